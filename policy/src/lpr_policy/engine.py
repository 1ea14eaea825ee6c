"""The policy engine the gateway asks on every request, and each service re-checks with.

Order of a decision:

1. The (resource, action) pair must be known (:data:`lpr_policy.vocabulary.PERMISSIONS`).
2. Subject gates: a user's training is current (B.1.d, C.2); data leaving its agency is
   covered by an MOU in force for that data class, purpose and lookback (D.1, D.2).
3. Casbin: some row of the policy grants one of the subject's roles in the target agency
   (or the subject itself) this resource and action, and all of that row's conditions
   hold. Otherwise deny; the reason is the first failed condition of the first row that
   matched by role, or ``deny-by-default`` when no row did.

Performance: the rows are partitioned by resource (one Casbin enforcer each, same model,
all ``g`` rows in each) and the matcher is parsed once per thread, so a decision costs
tens of microseconds rather than a scan of the whole policy.
"""

from __future__ import annotations

import inspect
import re
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import casbin

from lpr_policy.adapter import Row, RowsAdapter, RulesLoader, normalize_row, read_policy_file
from lpr_policy.conditions import (
    CONDITIONS,
    DEFAULT_CASE_NUMBER_PATTERN,
    Facts,
    Failure,
    Settings,
    check_sharing,
    check_training,
    parse_conditions,
)
from lpr_policy.models import DEFAULT_PURPOSES, AccessContext, Decision, Purpose, Subject
from lpr_policy.vocabulary import PERMISSIONS, Action, Resource, Role, SubjectKind

PurposesLoader = Callable[[], Iterable[Purpose] | Awaitable[Iterable[Purpose]]]
"""What the gateway provides to reload the administered purposes, sync or async."""

DEFAULT_LOOKBACK_DAYS = 90
DENY_BY_DEFAULT_CLAUSE = "B.1.a"

_CREDENTIAL_ROLES = frozenset({Role.PARTNER.value, Role.CAMERA.value})


def default_model_path() -> Path:
    """Path of the packaged ``model.conf``."""
    return Path(str(resources.files("lpr_policy").joinpath("model.conf")))


def default_policy_path() -> Path:
    """Path of the packaged baseline ``policy.csv``."""
    return Path(str(resources.files("lpr_policy").joinpath("policy.csv")))


def clause_of(rule: str) -> str:
    """Return the IACP clause of a rule id ``CLAUSE:name``."""
    return rule.partition(":")[0]


@lru_cache(maxsize=512)
def _parsed(conditions: str) -> tuple[tuple[str, str | None], ...]:
    return tuple(parse_conditions(conditions))


class _Request:
    """The ``r.env`` of one Casbin request: roles, facts, and what failed on the way."""

    __slots__ = ("_cache", "facts", "failures", "roles")

    def __init__(self, roles: tuple[str, ...], facts: Facts) -> None:
        self.roles = roles
        self.facts = facts
        self.failures: list[tuple[str, Failure]] = []
        self._cache: dict[tuple[str, str | None], Failure | None] = {}

    def conditions_hold(self, conditions: str, rule: str) -> bool:
        for name, argument in _parsed(conditions):
            key = (name, argument)
            if key not in self._cache:
                self._cache[key] = CONDITIONS[name](self.facts, argument)
            failure = self._cache[key]
            if failure is not None:
                self.failures.append((rule, failure))
                return False
        return True


def _conditions_hold(conditions: str, rule: str, request: _Request) -> bool:
    # Called by Casbin's matcher only for rows that already matched by role and domain.
    return request.conditions_hold(conditions, rule)


class _Enforcer(casbin.Enforcer):  # type: ignore[misc]
    """A Casbin enforcer that parses its matcher once per thread, not on every request.

    Casbin re-parses the matcher expression on each ``enforce`` call, which costs more
    than matching a partition's rows. Our enforcers are never modified after they are
    built (a reload builds new ones), so the parsed expression stays valid; it is kept
    per thread because the evaluator stores the request's names on itself.

    The evaluator gets its own copy of the functions: Casbin hands every call the one
    shared dict and adds ``g`` to it on the first ``enforce``, and an evaluator being built
    in another thread at that moment fails with "dictionary changed size during iteration".
    Parsing itself is done one thread at a time: CPython 3.11's AST conversion keeps its
    recursion depth in state shared by all threads, and two threads parsing at once can
    fail with "SystemError: AST constructor recursion depth mismatch" (seen in CI). It
    happens once per thread and matcher, so the lock costs nothing per request.
    """

    _parse_lock = threading.Lock()

    def __init__(self, model: Any, adapter: Any) -> None:
        self._parsed_matchers = threading.local()
        super().__init__(model, adapter)

    def _get_expression(self, expr: str, functions: Any = None) -> Any:
        parsed: dict[str, Any] = self._parsed_matchers.__dict__
        expression = parsed.get(expr)
        if expression is None:
            own = dict(functions) if functions is not None else None
            with self._parse_lock:
                expression = parsed[expr] = casbin.Enforcer._get_expression(expr, own)
        return expression


@dataclass(frozen=True, slots=True)
class _State:
    # One enforcer per resource, each with that resource's p rows and every g row:
    # Casbin scans all p rows per request, so a partition keeps a decision at a few
    # rows instead of the whole policy. Same model, same semantics.
    enforcers: Mapping[str, Any]
    settings: Settings
    rows: tuple[Row, ...]


class PolicyEngine:
    """Decides every request from the Casbin model, the policy rows and attribute checks.

    Build it once per process (in the lifespan), then ``await engine.reload()`` to pull
    the database rows and purposes, and again whenever they change (see
    :mod:`lpr_policy.adapter` for the watcher contract). :meth:`decide` is synchronous,
    CPU-only and safe to call concurrently with :meth:`reload`.
    """

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        policy_path: Path | None = None,
        extra_rules_loader: RulesLoader | None = None,
        purposes: Iterable[Purpose] = DEFAULT_PURPOSES,
        purposes_loader: PurposesLoader | None = None,
        default_lookback_days: int = DEFAULT_LOOKBACK_DAYS,
        case_number_pattern: str = DEFAULT_CASE_NUMBER_PATTERN,
    ) -> None:
        """Load the model and baseline policy; database rows come with :meth:`reload`.

        Args:
            model_path: Casbin model; defaults to the packaged ``model.conf``.
            policy_path: Baseline rows; defaults to the packaged ``policy.csv``.
            extra_rules_loader: Returns rows ``(ptype, v0..v5)`` from the database.
            purposes: Administered purposes until ``purposes_loader`` supplies them.
            purposes_loader: Returns the administered purposes from the database.
            default_lookback_days: How far back a user may search without an approval.
            case_number_pattern: Regular expression a whole case number must match.

        Raises:
            PolicyRowError: A baseline row is malformed or unknown.
        """
        self._model_text = (model_path or default_model_path()).read_text(encoding="utf-8")
        self._baseline = tuple(read_policy_file(policy_path or default_policy_path()))
        self._extra_rules_loader = extra_rules_loader
        self._purposes_loader = purposes_loader
        self._default_lookback_days = default_lookback_days
        self._case_number_pattern = re.compile(case_number_pattern)
        self._state = self._build(self._baseline, purposes)

    @classmethod
    def from_files(
        cls, model_path: Path | None = None, policy_path: Path | None = None
    ) -> PolicyEngine:
        """Build an engine from a model and a policy file alone (no database rows)."""
        return cls(model_path=model_path, policy_path=policy_path)

    @property
    def rules(self) -> tuple[Row, ...]:
        """All rows in force: the baseline followed by the database rows."""
        return self._state.rows

    @property
    def purposes(self) -> Mapping[str, Purpose]:
        """The administered purposes in force, by code."""
        return self._state.settings.purposes

    async def reload(self) -> None:
        """Rebuild from the baseline and the loaders, then swap the enforcer in atomically.

        Raises:
            PolicyRowError: A loaded row is malformed; the previous policy stays in force.
        """
        extra: list[Row] = []
        if self._extra_rules_loader is not None:
            loaded = self._extra_rules_loader()
            raw_rows = await loaded if inspect.isawaitable(loaded) else loaded
            extra = [normalize_row(raw) for raw in raw_rows]
        purposes: Iterable[Purpose] = self._state.settings.purposes.values()
        if self._purposes_loader is not None:
            loaded_purposes = self._purposes_loader()
            purposes = (
                await loaded_purposes if inspect.isawaitable(loaded_purposes) else loaded_purposes
            )
        self._state = self._build((*self._baseline, *extra), purposes)

    def _build(self, rows: Iterable[Row], purposes: Iterable[Purpose]) -> _State:
        rows = tuple(rows)
        role_rows = [row for row in rows if row[0] == "g"]
        by_resource: dict[str, list[Row]] = {}
        for row in rows:
            if row[0] == "p":
                by_resource.setdefault(row[3], []).append(row)
        enforcers: dict[str, Any] = {}
        for resource, policy_rows in by_resource.items():
            model = casbin.Enforcer.new_model(text=self._model_text)
            enforcer = _Enforcer(model, RowsAdapter([*policy_rows, *role_rows]))
            enforcer.add_function("conditionsHold", _conditions_hold)
            enforcers[resource] = enforcer
        settings = Settings(
            purposes={purpose.code: purpose for purpose in purposes},
            default_lookback_days=self._default_lookback_days,
            case_number_pattern=self._case_number_pattern,
        )
        return _State(enforcers=enforcers, settings=settings, rows=rows)

    def decide(
        self,
        subject: Subject,
        resource: Resource | str,
        action: Action | str,
        context: AccessContext,
    ) -> Decision:
        """Decide one request; deny unless a rule grants it and all its conditions hold.

        Args:
            subject: Who is asking, with the records the gateway holds about them.
            resource: What is touched; an unknown name is denied, not raised.
            action: What is done; an unknown name is denied, not raised.
            context: Purpose, case number, time range, target agency and time.

        Returns:
            The decision with the deciding rule, a reason and the IACP clause.
        """
        state = self._state
        try:
            known_resource, known_action = Resource(resource), Action(action)
            known = known_action in PERMISSIONS[known_resource]
        except ValueError:
            known = False
        if not known:
            return Decision(
                allowed=False,
                rule="unknown-permission",
                reason=f"unknown resource or action {resource}:{action}",
                clause=DENY_BY_DEFAULT_CLAUSE,
            )
        facts = Facts(
            subject=subject,
            context=context,
            resource=known_resource,
            action=known_action,
            settings=state.settings,
        )
        gate = self._gate(facts)
        if gate is not None:
            return Decision(False, gate.rule, gate.reason, gate.clause or DENY_BY_DEFAULT_CLAUSE)
        request = _Request(self._roles_in_domain(facts), facts)
        enforcer = state.enforcers.get(known_resource.value)
        allowed, explanation = (
            enforcer.enforce_ex(
                subject.key,
                context.target_agency,
                known_resource.value,
                known_action.value,
                request,
            )
            if enforcer is not None
            else (False, [])
        )
        if allowed:
            rule = str(explanation[-1])
            return Decision(True, rule, f"allowed by {rule}", clause_of(rule), grant=rule)
        if request.failures:
            rule, failure = request.failures[0]
            return Decision(
                False, failure.rule, failure.reason, failure.clause or clause_of(rule), grant=rule
            )
        held = ", ".join(request.roles) or "no role"
        return Decision(
            allowed=False,
            rule="deny-by-default",
            reason=(
                f"no rule grants {known_resource.value}:{known_action.value} to {subject.key} "
                f"({held}) in agency {context.target_agency}"
            ),
            clause=DENY_BY_DEFAULT_CLAUSE,
        )

    @staticmethod
    def _gate(facts: Facts) -> Failure | None:
        if facts.subject.kind is SubjectKind.USER:
            failure = check_training(facts)
            if failure is not None:
                return failure
        if facts.cross_agency or facts.subject.kind is SubjectKind.PARTNER:
            return check_sharing(facts)
        return None

    @staticmethod
    def _roles_in_domain(facts: Facts) -> tuple[str, ...]:
        subject = facts.subject
        if subject.kind is SubjectKind.PARTNER or facts.cross_agency:
            return (Role.PARTNER.value,)
        if subject.kind is SubjectKind.CAMERA:
            return (Role.CAMERA.value,)
        # A user record cannot make itself a camera or a partner: those come from how it
        # authenticated, never from a roles column.
        return tuple(sorted(set(subject.roles) - _CREDENTIAL_ROLES))
