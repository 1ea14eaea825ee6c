"""Gateway-specific problem responses."""

from __future__ import annotations

from lpr_common.errors import LprError, PolicyDenied, Problem


class DeniedProblem(Problem):
    """A policy refusal: the problem also names the IACP clause."""

    clause: str | None = None


class Denied(PolicyDenied):
    """The policy refused: 403 naming the rule, the clause and the reason."""

    def __init__(self, reason: str, *, rule: str, clause: str) -> None:
        super().__init__(reason, rule=rule)
        self.clause = clause

    def to_problem(self) -> Problem:
        """Render with the clause as an extension member (RFC 9457 allows them)."""
        return DeniedProblem(**super().to_problem().model_dump(), clause=self.clause)


class AccountLocked(LprError):
    """Too many failed logins: the account is locked for a while (CJIS 5.5.3)."""

    status, slug, title = 423, "account-locked", "Account locked"
