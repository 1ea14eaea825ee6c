"""Settings of the purge job (environment variables ``LPR_RETENTION_<FIELD>``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RetentionConfig(BaseSettings):
    """How often the purge runs in the background, and how long it may wait for locks.

    The retention periods themselves are not here: they are audited records of audit-svc
    (``GET /internal/v1/retention-settings``), read at the start of every run.
    """

    model_config = SettingsConfigDict(env_prefix="LPR_RETENTION_", extra="ignore")

    enabled: bool = True
    interval_minutes: float = Field(default=60.0, gt=0)
    # The first run waits one interval by default: a restart loop must not turn into a
    # purge loop, and short-lived stacks (tests, demos) never purge behind a test's back.
    first_run_delay_s: float | None = Field(default=None, ge=0)
    # Dropping a day partition locks the reads table; never queue behind a long transaction.
    lock_timeout_s: float = Field(default=10.0, gt=0)
    audit_timeout_s: float = Field(default=10.0, gt=0)
    # Placing a legal hold waits this long for a running purge to commit (it shares the
    # lock the purge holds), then is refused with 503 and Retry-After, nothing stored.
    hold_lock_timeout_s: float = Field(default=5.0, gt=0)
    hold_retry_after_s: int = Field(default=30, ge=1)
    # An image file no read refers to, written this long ago, is an orphan (its read was
    # refused or failed after the image was stored) and is deleted. Far longer than any
    # ingest takes between storing the image and committing the read.
    orphan_blob_grace_minutes: float = Field(default=60.0, gt=0)
    # Receipts of committed runs that audit-svc did not take (it was down) are resent this
    # often, runs or no runs (``lprctl retention run`` queues them too).
    receipts_flush_s: float = Field(default=30.0, gt=0)

    @property
    def first_delay_s(self) -> float:
        """Seconds before the first background run."""
        if self.first_run_delay_s is not None:
            return self.first_run_delay_s
        return self.interval_minutes * 60.0
