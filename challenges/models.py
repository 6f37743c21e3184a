"""Challenge and campaign definitions, rule kinds and per-member progress: frozen values, no I/O.

The wire/config form of a definition lives in :mod:`challenges.config`; these are the validated,
compiled forms the pure rules in :mod:`challenges.rules` evaluate (filters already parsed, window
bounds already resolved to UTC in the brand's timezone).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Literal

import msgspec

from engine.earning import Multiplier
from engine.effects import Effect
from engine.predicates import Predicate
from engine.texts import NO_TRANSLATIONS, Translations

StreakPeriod = Literal["day", "week"]
Recurrence = Literal["none", "daily", "weekly", "monthly"]
CampaignStatus = Literal["draft", "live", "paused"]


class CampaignState(StrEnum):
    """Where a campaign stands: computed from its window, its status and the clock."""

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"


class Match(msgspec.Struct, frozen=True, kw_only=True):
    """Which events a rule (or one step of it) looks at: a type and an optional filter."""

    event_type: str
    filter: Predicate | None = None


class Count(msgspec.Struct, frozen=True, kw_only=True, tag="count"):
    """``target`` matching events."""

    match: Match
    target: int


class Sum(msgspec.Struct, frozen=True, kw_only=True, tag="sum"):
    """A numeric property of matching events adds up to ``target``."""

    match: Match
    property: str
    target: float


class Streak(msgspec.Struct, frozen=True, kw_only=True, tag="streak"):
    """``target`` consecutive local days (or ISO weeks), each with at least one matching event.

    ``grace`` missed periods between two active ones never break the streak; beyond that each missed
    period uses one freeze. A member starts with ``freezes`` and holds at most that many; every
    ``earn_freeze_every`` consecutive active periods give one back.
    """

    match: Match
    target: int
    period: StreakPeriod = "day"
    grace: int = 0
    freezes: int = 0
    earn_freeze_every: int = 0


class Distinct(msgspec.Struct, frozen=True, kw_only=True, tag="distinct"):
    """``target`` distinct values of a property (visit five different stores)."""

    match: Match
    property: str
    target: int


class Sequence(msgspec.Struct, frozen=True, kw_only=True, tag="sequence"):
    """Steps done in order; an event that fits a later step early does not count."""

    steps: tuple[Match, ...]


class AllOf(msgspec.Struct, frozen=True, kw_only=True, tag="all_of"):
    """Steps done in any order; one event completes at most one step.

    ``required`` steps complete it (N of M: "any 3 of these 5 tasks"); 0 means every step.
    """

    steps: tuple[Match, ...]
    required: int = 0


class First(msgspec.Struct, frozen=True, kw_only=True, tag="first"):
    """The member's first matching event ever."""

    match: Match


Rule = Count | Sum | Streak | Distinct | Sequence | AllOf | First
_KINDS: dict[type, str] = {
    kind: str(kind.__struct_config__.tag) for kind in (Count, Sum, Streak, Distinct, Sequence, AllOf, First)
}


def rule_kind(rule: Rule) -> str:
    """The rule's type name as written in definitions (``count``, ``all_of``…)."""
    return _KINDS[type(rule)]


def rule_matches(rule: Rule) -> tuple[Match, ...]:
    """Every event pattern a rule looks at (one, or one per step)."""
    match rule:
        case Sequence(steps=steps) | AllOf(steps=steps):
            return steps
        case Count(match=m) | Sum(match=m) | Streak(match=m) | Distinct(match=m) | First(match=m):
            return (m,)
    raise AssertionError(f"unknown rule {rule!r}")  # pragma: no cover


def rule_target(rule: Rule) -> float:
    """What progress must reach to complete."""
    match rule:
        case Count(target=t) | Streak(target=t) | Distinct(target=t):
            return float(t)
        case Sum(target=t):
            return t
        case AllOf(steps=steps, required=required):
            return float(required or len(steps))
        case Sequence(steps=steps):
            return float(len(steps))
        case First():
            return 1.0
    raise AssertionError(f"unknown rule {rule!r}")  # pragma: no cover


class Reward(msgspec.Struct, frozen=True, kw_only=True):
    """What completing (an instance of) a challenge gives."""

    points: int = 0
    badge: str = ""


class Requirements(msgspec.Struct, frozen=True, kw_only=True):
    """What opens a challenge to a member: other challenges completed first, and a member-only condition.

    ``challenges`` must each have been completed (at least once) before an event counts: the event that
    completes the last of them does not count yet. ``member`` is a filter over ``member.<attribute>``
    (a tier prerequisite is ``member.tier in [...]``, the tier the tiers step computed).
    """

    challenges: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    member: Predicate | None = None
    """The tier condition and any member condition given, combined (all must hold)."""


NO_REQUIREMENTS = Requirements()


class Campaign(msgspec.Struct, frozen=True, kw_only=True):
    """A timed campaign: window ``[starts_at, ends_at)`` in UTC, status, eligibility and opt-in."""

    id: int
    key: str
    title: str
    description: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    """Exclusive: an event at exactly ``ends_at`` does not count."""
    status: CampaignStatus = "live"
    eligibility: Predicate | None = None
    opt_in: bool = False
    texts: Translations = NO_TRANSLATIONS
    """Title and description per locale, when given so (``title`` and ``description`` are the default's)."""


class Challenge(msgspec.Struct, frozen=True, kw_only=True):
    """A compiled challenge: its campaign, rule, recurrence, limits and reward."""

    id: int
    key: str
    campaign: Campaign
    title: str
    rule: Rule
    description: str = ""
    recurrence: Recurrence = "none"
    max_completions: int | None = None
    """Completions per member over all instances (``None``: once per instance, no overall cap)."""
    reward: Reward = Reward()
    min_interval: timedelta | None = None
    max_lateness: timedelta | None = None
    daily_cap: float | None = None
    """Most progress units (count or sum) one member can add per local day."""
    multipliers: tuple[Multiplier, ...] = ()
    live_since: datetime | None = None
    """When the challenge started receiving events; earlier-received events only count by backfill."""
    backfill_from: datetime | None = None
    """Events that occurred at or after this instant count even if received before ``live_since``."""
    position: int = 0
    kind: str = ""
    """The rule's type name (computed once when compiled; see :func:`rule_kind`)."""
    patterns: tuple[Match, ...] = ()
    """The rule's event patterns (computed once when compiled; see :func:`rule_matches`)."""
    goal: float = 0.0
    """The rule's target (computed once when compiled; see :func:`rule_target`)."""
    requires: Requirements = NO_REQUIREMENTS
    texts: Translations = NO_TRANSLATIONS
    """Title and description per locale, when given so (``title`` and ``description`` are the default's)."""
    """Prerequisites: what must be true of the member before an event counts (see :class:`Requirements`)."""

    @property
    def target(self) -> float:
        """What progress must reach to complete an instance."""
        return self.goal or rule_target(self.rule)

    @property
    def cap(self) -> int | None:
        """Completions allowed per member over all instances (one for a one-off challenge)."""
        return 1 if self.recurrence == "none" else self.max_completions


#: Short names of the stored fields: a member's whole state is one row, read and written for each of their
#: events. They are the stored format: changing one means a new :data:`STATE_FORMAT` that still reads the old.
STREAK_CARRY_NAMES = {"current": "c", "longest": "L", "freezes": "f", "last": "l"}
PROGRESS_NAMES = {
    "challenge": "id",
    "instance": "in",
    "kind": "k",
    "value": "v",
    "counted": "n",
    "completed_at": "C",
    "last_counted_at": "t",
    "seen": "s",
    "done": "d",
    "last_step_at": "T",
    "periods": "p",
    "carry": "r",
    "longest": "L",
    "freezes": "f",
    "streak_last": "l",
    "day_totals": "D",
    "prior": "P",
}
MEMBER_STATE_NAMES = {"progress": "p", "completions": "c"}
#: The version of the stored member state; every stored state starts with ``{"format":2``.
STATE_FORMAT = 2


# gc=False (here and on Progress, MemberState and Outcome): these values never hold reference cycles, and the
# pipeline makes one per event and challenge, which would otherwise keep setting off garbage collections.
class StreakCarry(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False, rename=STREAK_CARRY_NAMES):
    """A streak's state folded up to ``last``; periods after it are kept individually."""

    current: int = 0
    longest: int = 0
    freezes: int = 0
    last: date | None = None


class Progress(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False, rename=PROGRESS_NAMES):
    """One member's state on one instance of one challenge.

    Stored as JSON under short names (:data:`PROGRESS_NAMES`) and without ``challenge`` and ``instance``,
    which the keys it is stored under already say (:mod:`challenges.codec`); new fields need defaults.
    """

    challenge: str = ""
    instance: str = ""
    kind: str = ""
    """The rule type this state was built for; a different type starts afresh."""
    value: float = 0.0
    """Count, sum, distinct values, steps done, or the current streak."""
    counted: int = 0
    completed_at: datetime | None = None
    last_counted_at: datetime | None = None
    seen: tuple[str, ...] = ()
    """Distinct values seen (up to the target)."""
    done: tuple[int, ...] = ()
    """Indices of the steps done (``all_of`` and ``sequence``)."""
    last_step_at: datetime | None = None
    periods: tuple[date, ...] = ()
    """Streak: first local day of each active period after ``carry.last``, sorted."""
    carry: StreakCarry | None = None
    longest: int = 0
    freezes: int = 0
    streak_last: date | None = None
    day_totals: dict[str, float] = {}
    """Units counted per local day (ISO date), for the daily cap; only recent days are kept."""
    prior: bool = False
    """``first``: an earlier matching event exists, so this challenge can no longer be won."""

    @property
    def completed(self) -> bool:
        """Whether this instance is complete."""
        return self.completed_at is not None


class MemberState(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    omit_defaults=True,
    gc=False,
    tag_field="format",
    tag=STATE_FORMAT,
    rename=MEMBER_STATE_NAMES,
):
    """Everything one member has on a brand's challenges: one stored row per member.

    ``progress`` maps a challenge's key to its instances' progress; ``completions`` counts the instances
    of each challenge the member completed, ever (the cap), including pruned ones.
    """

    progress: dict[str, dict[str, Progress]] = {}
    completions: dict[str, int] = {}


class Reason(StrEnum):
    """Why an event did or did not count for a challenge (shown by the explain view)."""

    COUNTED = "counted"
    COMPLETED = "completed"
    NO_MATCH = "no_match"
    DRAFT = "draft"
    PAUSED = "paused"
    BEFORE_WINDOW = "before_window"
    AFTER_WINDOW = "after_window"
    TOO_LATE = "too_late"
    NOT_LIVE_YET = "not_live_yet"
    NOT_ELIGIBLE = "not_eligible"
    LOCKED = "locked"
    NOT_OPTED_IN = "not_opted_in"
    ALREADY_COMPLETED = "already_completed"
    CAP_REACHED = "cap_reached"
    TOO_SOON = "too_soon"
    DAILY_CAP = "daily_cap"
    SAME_PERIOD = "same_period"
    ALREADY_SEEN = "already_seen"
    MISSING_PROPERTY = "missing_property"
    NOT_A_NUMBER = "not_a_number"
    OUT_OF_ORDER = "out_of_order"
    NOT_FIRST = "not_first"
    TOO_OLD = "too_old"
    RETRACTED = "retracted"

    @property
    def counts(self) -> bool:
        """Whether the event moved progress forward."""
        return self is Reason.COUNTED or self is Reason.COMPLETED


class Outcome(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The result of evaluating one event against one challenge for one member."""

    progress: Progress
    effects: list[Effect]
    reason: Reason
    detail: str = ""

    @property
    def counted(self) -> bool:
        """Whether the event moved progress forward."""
        return self.reason.counts

    @property
    def completed(self) -> bool:
        """Whether this event completed the instance."""
        return self.reason is Reason.COMPLETED
