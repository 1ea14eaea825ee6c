"""Policy rows from ``policy.csv`` and from the gateway's database, as a Casbin adapter.

Row shape (the usual ``casbin_rule`` table: ptype, v0..v5):

* ``p, SUBJECT, AGENCY, RESOURCE, ACTION, CONDITIONS, RULE``: SUBJECT is a role
  (``officer``) or a subject key (``user:42``); AGENCY is an agency id or ``*``;
  CONDITIONS is a space-separated list of condition tokens (may be empty); RULE is
  ``CLAUSE:name`` (``C.8:officer-historical-search``) and names the IACP clause.
* ``g, SUBJECT_KEY, ROLE, AGENCY``: an extra role assignment (``g, user:42, auditor,
  agency-a``), e.g. a temporary appointment.

Watcher contract (for the gateway): the database rows are read by a loader the gateway
passes to :class:`lpr_policy.engine.PolicyEngine` (``extra_rules_loader``), a callable
returning rows or an awaitable of rows. Whenever a replica learns that the table changed,
it calls ``await engine.reload()``; the new enforcer is built aside and swapped in one
assignment, so requests in flight finish on the old one and a bad row leaves the old
policy in place (``reload`` raises :class:`PolicyRowError`). Two ways to learn of a change:

* PostgreSQL ``LISTEN lpr_policy_changed``; the code that writes the rows runs
  ``NOTIFY lpr_policy_changed`` in the same transaction (delivered on commit).
* Polling every few seconds, e.g. ``SELECT max(updated_at), count(*)`` on the table,
  reloading when it differs; also the fallback when the LISTEN connection drops.

Either way every replica sees a change within seconds. Time-bound grants (``window:``)
need no reload when they expire: the condition is evaluated on every request.
"""

from __future__ import annotations

import csv
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from casbin.persist.adapter import Adapter

from lpr_policy.conditions import parse_conditions
from lpr_policy.vocabulary import is_known_permission

Row = tuple[str, ...]
RulesLoader = Callable[
    [], Iterable[Sequence[str | None]] | Awaitable[Iterable[Sequence[str | None]]]
]
"""What the gateway provides: rows ``(ptype, v0, ..., v5)``, sync or async."""

P_FIELDS = 6
G_FIELDS = 3


class PolicyRowError(ValueError):
    """A policy row is malformed or names something the policy does not know."""


def normalize_row(raw: Sequence[str | None]) -> Row:
    """Validate one row and return it as ``(ptype, v0, ...)`` with the exact field count.

    Trailing empty or None values (unused ``v`` columns of a database table) are dropped.

    Raises:
        PolicyRowError: The row cannot be used.
    """
    values = [(value or "").strip() for value in raw]
    while values and not values[-1]:
        values.pop()
    if not values:
        raise PolicyRowError("empty policy row")
    ptype, fields = values[0], values[1:]
    if ptype == "g":
        if len(fields) != G_FIELDS or not all(fields):
            raise PolicyRowError(f"g row needs subject, role, agency: {raw!r}")
        return ("g", *fields)
    if ptype != "p":
        raise PolicyRowError(f"unknown ptype {ptype!r} in {raw!r}")
    if len(fields) != P_FIELDS:
        raise PolicyRowError(
            f"p row needs subject, agency, resource, action, conditions, rule: {raw!r}"
        )
    subject, agency, resource, action, conditions, rule = fields
    if not (subject and agency and rule):
        raise PolicyRowError(f"p row needs a subject, an agency and a rule id: {raw!r}")
    if ":" not in rule:
        raise PolicyRowError(f"rule id {rule!r} must be CLAUSE:name")
    if not is_known_permission(resource, action):
        raise PolicyRowError(f"unknown permission {resource}:{action} in {raw!r}")
    try:
        parse_conditions(conditions)
    except ValueError as error:
        raise PolicyRowError(str(error)) from error
    return ("p", *fields)


def read_policy_file(path: Path) -> list[Row]:
    """Read a Casbin ``policy.csv`` (``#`` comments and blank lines allowed)."""
    rows: list[Row] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for line_number, raw in enumerate(csv.reader(handle, skipinitialspace=True), 1):
            if not raw or not "".join(raw).strip() or raw[0].lstrip().startswith("#"):
                continue
            try:
                rows.append(normalize_row(raw))
            except PolicyRowError as error:
                raise PolicyRowError(f"{path}:{line_number}: {error}") from error
    return rows


class RowsAdapter(Adapter):  # type: ignore[misc]
    """A read-only Casbin adapter over rows already loaded and validated.

    The engine builds a new one on every reload; saving through Casbin is not
    supported because the gateway's repository owns the table.
    """

    def __init__(self, rows: Iterable[Row]) -> None:
        self._rows = list(rows)

    def load_policy(self, model: Any) -> None:
        """Load all rows into the Casbin model."""
        for ptype, *fields in self._rows:
            model.add_policy(ptype, ptype, list(fields))

    def save_policy(self, model: Any) -> bool:
        """Refuse: policy rows are written by the gateway's repository, not by Casbin."""
        raise NotImplementedError("lpr_policy adapters are read-only")
