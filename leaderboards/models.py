"""Leaderboard values: definitions (wire form and validated form), standings, pages. Pure; no I/O.

The small values a read builds by the dozen (``Placed``, ``Entry``, ``MemberStanding``, ``PeriodOut``,
``BoardSummary``) hold scalars only, so they are declared ``gc=False``: they cannot form a reference
cycle, and leaving them out of the cycle collector saves it work on every read.

A board is defined by a :class:`BoardSpec` (what the API and the program document carry, validated with
``forbid_unknown_fields``) and compiled by :func:`leaderboards.config.build_board` into a :class:`BoardDef`
(filter parsed, limits checked). Scores are kept as integer *units*: ``score × 10^decimals``, so sums
are exact and a Redis double holds them without rounding (see docs/leaderboards.md).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from engine.events import AwareDatetime, EventType
from engine.predicates import Predicate
from engine.texts import NO_TRANSLATIONS, LocaleTag, Translations

BoardKey = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
AttributeName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")]
MAX_REWARD_RANK = 1000
MAX_ABS_SCORE = 10**15
"""Totals beyond ± this many units are clamped (a Redis double is exact to 2^53 ≈ 9.007e15)."""

PeriodName = Literal["all_time", "daily", "weekly", "monthly", "window"]
Order = Literal["desc", "asc"]
Mode = Literal["increment", "best", "latest"]
Ties = Literal["competition", "dense", "first_to_reach"]
Visibility = Literal["public", "members"]
DisplayPolicy = Literal["full_name", "initials", "pseudonym"]


class _Metric(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="kind"):
    """Base of the metric kinds; ``kind`` names one on the wire."""


class PointsMetric(_Metric, tag="points", frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Points the event earned (every ``PointsAwarded`` it caused)."""


class PointsFromMetric(_Metric, tag="points_from", frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Points from one source (``rule``, ``challenge``, ``badge``), optionally one key of it."""

    source: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    key: Annotated[str, msgspec.Meta(max_length=64)] = ""


class EventCountMetric(_Metric, tag="event_count", frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One per event of a type."""

    event_type: EventType


class PropertySumMetric(_Metric, tag="property_sum", frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The value of a numeric property of events of a type (summed, best or latest by ``mode``)."""

    event_type: EventType
    property: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class ChallengeCompletionsMetric(
    _Metric, tag="challenge_completions", frozen=True, kw_only=True, forbid_unknown_fields=True
):
    """Challenge completions (of one challenge when ``challenge`` is set)."""

    challenge: Annotated[str, msgspec.Meta(max_length=64)] = ""


Metric = PointsMetric | PointsFromMetric | EventCountMetric | PropertySumMetric | ChallengeCompletionsMetric


class Reward(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What members ranked ``from_rank``…``to_rank`` (inclusive) get when a period closes."""

    from_rank: Annotated[int, msgspec.Meta(ge=1, le=MAX_REWARD_RANK)] = 1
    to_rank: Annotated[int, msgspec.Meta(ge=1, le=MAX_REWARD_RANK)]
    points: Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)] = 0
    badge: Annotated[str, msgspec.Meta(max_length=64)] = ""


BoardText = Annotated[str, msgspec.Meta(max_length=500)]


class BoardSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The wire and config form of a board definition (``filter`` still plain data)."""

    key: BoardKey
    title: Title | dict[LocaleTag, Title]
    """A plain string, or one per locale (``{en: Top reviewers, it: Migliori recensori}``)."""
    metric: Metric
    period: PeriodName = "all_time"
    starts_at: AwareDatetime | None = None
    """Events before this instant do not count; required for ``period: window``."""
    ends_at: AwareDatetime | None = None
    """Events at or after this instant do not count; required for ``period: window``."""
    scope: AttributeName | None = None
    """A member attribute (``store``, ``region``…): one board per value; ``None`` = one board."""
    order: Order = "desc"
    mode: Mode = "increment"
    ties: Ties = "competition"
    min_score: float | None = None
    """Members appear only once their score is at least this."""
    filter: dict[str, Any] | None = None
    """Eligibility: a predicate over the event and the member (``engine.predicates``)."""
    visibility: Visibility = "public"
    display: DisplayPolicy = "full_name"
    decimals: Annotated[int, msgspec.Meta(ge=0, le=4)] = 0
    rewards: list[Reward] = []
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 30
    """How long a closed period's Redis key lives on (the SQL archive is kept)."""
    grace_minutes: Annotated[int, msgspec.Meta(ge=0, le=10080)] = 60
    """How long after a period ends late events still count before it is closed."""
    active: bool = True
    description: BoardText | dict[LocaleTag, BoardText] = ""


class BoardDef(msgspec.Struct, frozen=True, kw_only=True):
    """A validated board, ready to evaluate."""

    id: int
    key: str
    title: str
    metric: Metric
    period: PeriodName = "all_time"
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    scope: str | None = None
    order: Order = "desc"
    mode: Mode = "increment"
    ties: Ties = "competition"
    min_score: float | None = None
    filter: Predicate | None = None
    visibility: Visibility = "public"
    display: DisplayPolicy = "full_name"
    decimals: int = 0
    rewards: tuple[Reward, ...] = ()
    retention_days: int = 30
    grace_minutes: int = 60
    active: bool = True
    description: str = ""
    texts: Translations = NO_TRANSLATIONS
    """Title and description per locale, when given so (``title`` and ``description`` are the default's)."""

    def in_locale(self, locale: str | None) -> BoardDef:
        """This board with its title and description in ``locale`` (itself when they are plain strings)."""
        if not self.texts.fields:
            return self
        return msgspec.structs.replace(
            self,
            title=self.texts.text("title", locale, self.title),
            description=self.texts.text("description", locale, self.description),
        )

    @property
    def scale(self) -> int:
        """Units per score point."""
        return int(10**self.decimals)

    @property
    def min_units(self) -> int | None:
        """``min_score`` in units (rounded up: a member needs at least that score)."""
        if self.min_score is None:
            return None
        return math.ceil(self.min_score * self.scale - 1e-9)


class PeriodRef(msgspec.Struct, frozen=True, kw_only=True):
    """One period of a board: its id and UTC bounds (``None`` = open)."""

    id: str
    starts_at: datetime | None
    ends_at: datetime | None


class Placed(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A member's place in a period's standings (``position`` is 0-based and unique)."""

    member_id: int
    position: int
    rank: int
    units: int


class Entry(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One line of a board as the API shows it."""

    rank: int
    score: float
    label: str
    member: str | None = None
    """The member's external id (secret-key reads only)."""
    me: bool = False


class MemberStanding(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One member's rank, score and percentile (``rank`` is ``None`` when they are not on the board)."""

    member: str
    rank: int | None
    score: float | None
    percentile: float | None
    label: str = ""


class PeriodOut(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The period a page belongs to."""

    id: str
    starts_at: datetime | None
    ends_at: datetime | None
    current: bool
    closed: bool


class BoardSummary(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What a board is, as widgets see it."""

    key: str
    title: str
    period: PeriodName
    order: Order
    ties: Ties
    scope: str | None
    visibility: Visibility
    description: str = ""


class BoardPage(msgspec.Struct, frozen=True, kw_only=True):
    """A read of one board: a page of the top, and optionally one member's neighbourhood and friends."""

    board: BoardSummary
    period: PeriodOut
    scope: str
    total: int
    """How many members are on this board (period and scope)."""
    offset: int
    limit: int
    entries: list[Entry]
    me: MemberStanding | None = None
    around: list[Entry] | None = None
    members: list[MemberStanding] | None = None
    source: Literal["redis", "archive", "sql"] = "redis"
    """Where the answer came from: live Redis, the closed period's archive, or the SQL totals while Redis is
    down, behind (writes it missed are being caught up) or rebuilt."""


DisplayChoice = Literal["", "full_name", "initials", "pseudonym"]


class Preference(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How a member wants to appear on boards."""

    opt_out: bool = False
    """Leave every public board (members-only boards still list them)."""
    display: DisplayChoice = ""
    """``initials`` or ``pseudonym`` to show less than the board would; ``""`` follows the board."""
    pseudonym: Annotated[str, msgspec.Meta(max_length=40, pattern=r"^[^\x00-\x1f<>]*$")] = ""


class MemberInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What a board needs to show a member: ids, name and display preference."""

    member_id: int
    external_id: str
    display_name: str
    attributes: dict[str, Any] = {}
    opt_out: bool = False
    display: DisplayChoice = ""
    pseudonym: str = ""


class Total(msgspec.Struct, frozen=True, kw_only=True):
    """A member's absolute total on one period and scope of a board (a row of the source of truth)."""

    board_id: int
    period: str
    scope: str
    member_id: int
    units: int
    reached_at: datetime


class PeriodState(msgspec.Struct, frozen=True, kw_only=True):
    """A period of a board as stored: bounds, whether (and when) it was closed, how many it archived."""

    board_id: int
    period: str
    starts_at: datetime | None
    ends_at: datetime | None
    closed_at: datetime | None = None
    members: int = 0
