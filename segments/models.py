"""Segment definitions and their pure evaluation. No I/O.

A segment is a list of clauses joined by ``all`` or ``any``. Each clause names one metric and one
comparison, so "why is Giulia in *lapsed-vip*?" is answered clause by clause with the metric's value.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from engine.errors import DefinitionError
from engine.predicates import Leaf
from engine.predicates import matches as predicate_matches

if TYPE_CHECKING:
    from collections.abc import Mapping

Slug = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")]
Names = dict[Annotated[str, msgspec.Meta(max_length=16)], Annotated[str, msgspec.Meta(max_length=200)]]
Short = Annotated[str, msgspec.Meta(max_length=64)]
MetricKind = Literal[
    "events",
    "spend",
    "days_since_last_event",
    "points_balance",
    "tier",
    "badges",
    "challenges_completed",
    "redemptions",
    "attribute",
]
#: Metrics that an event of the member's own changes on the ingest path (see :func:`advance`).
EVENT_METRICS = frozenset({"events", "spend", "days_since_last_event"})
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in")
MAX_CLAUSES = 20
MAX_SEGMENTS = 100


class Clause(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One metric compared with a literal, e.g. ``{metric: spend, event_type: purchase, days: 90, gte: 200}``."""

    metric: MetricKind
    event_type: Short = ""
    """``events``/``spend``/``days_since_last_event``: the event type (empty: any type)."""
    property: Short = ""
    """``spend``: the numeric event property summed (default ``amount``)."""
    days: Annotated[int, msgspec.Meta(ge=1, le=3660)] | None = None
    """``events``/``spend``: the last N days (none: all time)."""
    badge: Short = ""
    """``badges``: count only this badge (empty: every badge held)."""
    name: Short = ""
    """``attribute``: the member attribute compared."""
    eq: Any = None
    ne: Any = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    in_: list[Any] | None = msgspec.field(default=None, name="in")
    not_in: list[Any] | None = None

    def comparison(self) -> tuple[str, Any]:
        """The clause's one operator and its value."""
        found = [(op, getattr(self, "in_" if op == "in" else op)) for op in OPERATORS]
        found = [(op, value) for op, value in found if value is not None]
        return found[0]

    def describe(self) -> str:
        """A compact notation of the clause, e.g. ``spend(purchase, amount, 90d) ≥ 200``."""
        args = ", ".join(p for p in (self.event_type, self.property, f"{self.days}d" if self.days else "",
                                     self.badge, self.name) if p)  # fmt: skip
        op, value = self.comparison()
        symbol = {"eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤", "in": "in", "not_in": "not in"}[
            op
        ]
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        return f"{self.metric}({args}) {symbol} {shown}"

    def key(self) -> str:
        """A stable id of the metric part (the comparison excluded): equal metrics are computed once."""
        raw = msgspec.json.encode([self.metric, self.event_type, self.property, self.days, self.badge, self.name])
        return "m_" + hashlib.sha256(raw).hexdigest()[:12]

    def test(self, value: Any) -> bool:
        """Whether ``value`` satisfies the comparison (a missing value compares like a missing field)."""
        op, expected = self.comparison()
        if op in ("in", "not_in"):
            expected = tuple(expected)
        member = {} if value is None else {"v": value}
        return predicate_matches(Leaf(field="member.v", op=op, value=expected), properties={}, member=member)


class SegmentDef(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A named, reusable segment."""

    slug: Slug
    name: Names = {}
    description: Annotated[str, msgspec.Meta(max_length=500)] = ""
    match: Literal["all", "any"] = "all"
    clauses: Annotated[list[Clause], msgspec.Meta(min_length=1, max_length=MAX_CLAUSES)]

    def label(self, locale: str) -> str:
        """The name in ``locale`` (or its language, English, any), else the slug."""
        lang = locale.split("-")[0].split("_")[0]
        for candidate in (locale, lang, "en"):
            if self.name.get(candidate):
                return self.name[candidate]
        return next(iter(self.name.values()), self.slug) or self.slug


class ClauseResult(msgspec.Struct, frozen=True, kw_only=True):
    """How one clause evaluated for one member."""

    clause: Clause
    value: Any
    held: bool


class Explanation(msgspec.Struct, frozen=True, kw_only=True):
    """Whether a member is in a segment, and why: every clause with the metric's value."""

    member: bool
    match: str
    clauses: list[ClauseResult]


def validate(segment: SegmentDef, *, path: str = "$") -> SegmentDef:
    """Check what the schema cannot: one operator per clause, and each metric's required fields.

    Raises:
        DefinitionError: naming the clause's path.
    """
    for index, clause in enumerate(segment.clauses):
        where = f"{path}.clauses[{index}]"
        ops = [op for op in OPERATORS if getattr(clause, "in_" if op == "in" else op) is not None]
        if len(ops) != 1:
            raise DefinitionError("a clause takes exactly one of " + ", ".join(OPERATORS), field=where)
        if clause.metric == "attribute" and not clause.name:
            raise DefinitionError("an `attribute` clause needs `name`", field=f"{where}.name")
        if clause.metric == "spend" and not clause.property:
            raise DefinitionError("a `spend` clause needs `property` (e.g. amount)", field=f"{where}.property")
        if clause.days is not None and clause.metric not in ("events", "spend"):
            raise DefinitionError("`days` applies to `events` and `spend` only", field=f"{where}.days")
    return segment


def metric_value(clause: Clause, facts: Mapping[str, Any], view: Mapping[str, Any], now: datetime) -> Any:
    """The value ``clause`` compares: from the SQL facts, or the member's attributes and tier.

    ``days_since_last_event`` is whole days from the last event to ``now``, ``None`` for a member without one
    (no comparison holds but ``ne``/``not_in``: a member who never came is not "lapsed"); counts and sums of
    no rows are 0.
    """
    if clause.metric == "attribute":
        return view.get(clause.name)
    if clause.metric == "tier":
        return view.get("tier")
    raw = facts.get(clause.key())
    if clause.metric == "days_since_last_event":
        if not isinstance(raw, datetime):
            return None
        return max(0, (now - raw).days)
    return raw or 0


def explain(segment: SegmentDef, facts: Mapping[str, Any], view: Mapping[str, Any], now: datetime) -> Explanation:
    """Evaluate every clause of ``segment`` for one member (no short-cut: the answer lists them all)."""
    results = []
    for clause in segment.clauses:
        value = metric_value(clause, facts, view, now)
        results.append(ClauseResult(clause=clause, value=value, held=clause.test(value)))
    held = [r.held for r in results]
    member = all(held) if segment.match == "all" else any(held)
    return Explanation(member=member, match=segment.match, clauses=results)


def member_of(segment: SegmentDef, facts: Mapping[str, Any], view: Mapping[str, Any], now: datetime) -> bool:
    """Whether the member with ``facts`` and attribute ``view`` is in ``segment`` at ``now``."""
    tests = (c.test(metric_value(c, facts, view, now)) for c in segment.clauses)
    return all(tests) if segment.match == "all" else any(tests)


def needed_clauses(segments: list[SegmentDef]) -> dict[str, Clause]:
    """The SQL-computed metrics ``segments`` need, one per distinct metric (key → clause)."""
    return {c.key(): c for s in segments for c in s.clauses if c.metric not in ("attribute", "tier")}


def advance(
    clauses: Mapping[str, Clause], facts: dict[str, Any], *, event_type: str, properties: Mapping[str, Any],
    occurred_at: datetime, now: datetime,
) -> None:  # fmt: skip
    """Fold one of the member's events of this unit into ``facts``, so the unit's next event sees it.

    The SQL facts were read before the unit; its events are not in the event log yet. An event of the unit
    falls inside every "last N days" window (windows end now; a late event older than the window is the
    """
    for key, clause in clauses.items():
        if clause.metric not in EVENT_METRICS or (clause.event_type and clause.event_type != event_type):
            continue
        if clause.days is not None and occurred_at < now - timedelta(days=clause.days):
            continue  # a late event older than the window
        if clause.metric == "events":
            facts[key] = (facts.get(key) or 0) + 1
        elif clause.metric == "spend":
            amount = properties.get(clause.property)
            if isinstance(amount, int | float) and not isinstance(amount, bool):
                facts[key] = (facts.get(key) or 0) + amount
        else:
            last = facts.get(key)
            facts[key] = occurred_at if not isinstance(last, datetime) else max(last, occurred_at)
