"""Settings of the hot-list service."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from lpr_common.settings import LprSettings

SCHEMA = "hotlist"


class Settings(LprSettings):
    """Hot-list service settings; service-specific ones take the ``LPR_HOTLIST_`` prefix."""

    model_config = SettingsConfigDict(extra="ignore", env_prefix="LPR_")

    # Safety net behind LISTEN/NOTIFY: how often a replica compares its index generation
    # with the database's and rebuilds if it missed a notification.
    hotlist_index_check_s: float = 30.0
    # How long an idle alert stream waits before polling the database again.
    hotlist_stream_poll_s: float = 5.0
    # Shift checks older than this do not flag new alerts.
    hotlist_shift_check_valid_h: int = 14
    # How often queued audit events (audit-svc was down after a step committed) are resent.
    hotlist_audit_outbox_flush_s: float = 5.0
