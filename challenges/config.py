"""Decode and validate campaign and challenge definitions (the YAML/JSON form), and compile them.

The *spec* structs are the wire and storage form: unknown fields are refused, defaults are omitted on
export, filters stay plain data. :func:`build_campaign` and :func:`build_challenge` turn a spec into the
compiled :mod:`challenges.models` value, validating everything a definition can get wrong and naming the
JSON path of the first mistake, so a typo is a 4xx when it is saved and never a crash at run time.

Window instants are written as RFC 3339 with an offset, or as a local date or date-time without one,
which is then read in the brand's timezone (``2026-11-01`` is local midnight). ``ends_at`` is exclusive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import msgspec

from challenges.graph import check_graph
from challenges.models import (
    AllOf,
    Campaign,
    CampaignStatus,
    Challenge,
    Count,
    Distinct,
    First,
    Match,
    Recurrence,
    Reward,
    Rule,
    Sequence,
    Streak,
    StreakPeriod,
    Sum,
    rule_kind,
    rule_matches,
    rule_target,
)
from challenges.requirements import RequiresSpec, build_requirements, member_only
from engine.earning import Multiplier
from engine.errors import DefinitionError
from engine.events import EventType
from engine.predicates import Predicate, parse_predicate

T = TypeVar("T")

Key = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")]
BadgeKey = Annotated[str, msgspec.Meta(max_length=64, pattern=r"^([a-z0-9][a-z0-9_\-]*)?$")]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Text = Annotated[str, msgspec.Meta(max_length=2000)]
When = Annotated[str, msgspec.Meta(min_length=10, max_length=40)]
Duration = Annotated[str, msgspec.Meta(pattern=r"^[1-9][0-9]{0,5}[smhdw]$")]
"""A positive whole number of seconds, minutes, hours, days or weeks: ``90s``, ``15m``, ``6h``, ``7d``, ``2w``."""
PropertyName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[^.\s][^\s]*$")]
Filter = dict[str, Any]

MAX_STEPS = 20
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")


class _Spec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Base of definition specs: strict on input, concise on export."""


class StepSpec(_Spec, frozen=True):
    """One step of a ``sequence`` or ``all_of`` rule."""

    event_type: EventType
    filter: Filter | None = None


class _RuleSpec(_Spec, frozen=True, tag_field="type"):
    """Base of rule specs; ``type`` names the kind."""


class CountSpec(_RuleSpec, frozen=True, tag="count"):
    """``target`` matching events."""

    event_type: EventType
    target: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
    filter: Filter | None = None


class SumSpec(_RuleSpec, frozen=True, tag="sum"):
    """A numeric property adds up to ``target``."""

    event_type: EventType
    property: PropertyName
    target: Annotated[float, msgspec.Meta(gt=0, le=1e12)]
    filter: Filter | None = None


class StreakSpec(_RuleSpec, frozen=True, tag="streak"):
    """``target`` consecutive days or weeks with a matching event."""

    event_type: EventType
    target: Annotated[int, msgspec.Meta(ge=1, le=3660)]
    period: StreakPeriod = "day"
    grace: Annotated[int, msgspec.Meta(ge=0, le=30)] = 0
    freezes: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0
    earn_freeze_every: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 0
    filter: Filter | None = None


class DistinctSpec(_RuleSpec, frozen=True, tag="distinct"):
    """``target`` distinct values of a property."""

    event_type: EventType
    property: PropertyName
    target: Annotated[int, msgspec.Meta(ge=1, le=1000)]
    filter: Filter | None = None


class SequenceSpec(_RuleSpec, frozen=True, tag="sequence"):
    """Steps in order."""

    steps: Annotated[list[StepSpec], msgspec.Meta(min_length=1, max_length=MAX_STEPS)]


class AllOfSpec(_RuleSpec, frozen=True, tag="all_of"):
    """Steps in any order; ``required`` of them complete it (N of M), every one when not given."""

    steps: Annotated[list[StepSpec], msgspec.Meta(min_length=1, max_length=MAX_STEPS)]
    required: Annotated[int, msgspec.Meta(ge=1, le=MAX_STEPS)] | None = None


class FirstSpec(_RuleSpec, frozen=True, tag="first"):
    """The first matching event ever."""

    event_type: EventType
    filter: Filter | None = None


RuleSpec = CountSpec | SumSpec | StreakSpec | DistinctSpec | SequenceSpec | AllOfSpec | FirstSpec


class RewardSpec(_Spec, frozen=True):
    """Bonus points (through the ledger) and a badge key."""

    points: Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)] = 0
    badge: BadgeKey = ""


class CampaignSpec(_Spec, frozen=True):
    """A timed campaign as written in a program document."""

    key: Key
    title: Title
    description: Text = ""
    starts_at: When | None = None
    ends_at: When | None = None
    """Exclusive end of the window."""
    status: CampaignStatus = "live"
    eligibility: Filter | None = None
    """A filter over ``member.<attribute>`` only, e.g. ``{field: member.tier, in: [gold, silver]}``."""
    opt_in: bool = False


class ChallengeSpec(_Spec, frozen=True):
    """A challenge as written in a program document."""

    key: Key
    campaign: Key
    title: Title
    rule: RuleSpec
    description: Text = ""
    recurrence: Recurrence = "none"
    max_completions: Annotated[int, msgspec.Meta(ge=1, le=100_000)] | None = None
    reward: RewardSpec = RewardSpec()
    min_interval: Duration | None = None
    max_lateness: Duration | None = None
    daily_cap: Annotated[float, msgspec.Meta(gt=0, le=1e12)] | None = None
    multipliers: list[Multiplier] = []
    backfill_from: When | None = None
    requires: RequiresSpec | None = None
    """What opens the challenge to a member (see :class:`challenges.models.Requirements`)."""


def plain(value: Any) -> Any:
    """YAML's native dates and times as ISO strings, so a document decodes the same from YAML and JSON."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def decode(data: Any, kind: type[T], *, path: str) -> T:
    """Convert plain data to ``kind``, naming the path of the first mistake.

    Raises:
        DefinitionError: the data does not fit ``kind``; ``field`` is the JSON path.
    """
    try:
        return msgspec.convert(plain(data), kind)
    except msgspec.ValidationError as exc:
        message = str(exc)
        found = _PATH.search(message)
        where = path + (found.group("path") if found else "")
        if found:
            message = message[: found.start()]
        raise DefinitionError(f"{message} (at {where})", field=where) from exc


def parse_when(value: str, tz: ZoneInfo, *, field: str) -> datetime:
    """An instant from RFC 3339, or from a local date or date-time read in ``tz``.

    Raises:
        DefinitionError: not an ISO date or date-time.
    """
    text = value.strip()
    try:
        local = datetime.fromisoformat(text)  # a date alone is its local midnight
    except ValueError as exc:
        raise DefinitionError(
            f"{value!r} is not an ISO date (2026-11-01) or date-time (2026-11-01T09:00:00+01:00)", field=field
        ) from exc
    if local.tzinfo is None:
        local = local.replace(tzinfo=tz)
    return local.astimezone(UTC)


def parse_duration(value: str) -> timedelta:
    """A :data:`Duration` string as a ``timedelta`` (the pattern was checked on decode)."""
    return timedelta(**{_DURATION_UNITS[value[-1]]: int(value[:-1])})


def _filter(data: Filter | None, *, path: str) -> Predicate | None:
    return None if data is None else parse_predicate(data, path=path)


def build_campaign(spec: CampaignSpec, *, tz: ZoneInfo, path: str = "$", campaign_id: int = 0) -> Campaign:
    """Validate a campaign spec and compile it (window in UTC, eligibility parsed).

    Raises:
        DefinitionError: a bad date, an empty window, or a bad eligibility filter.
    """
    starts_at = parse_when(spec.starts_at, tz, field=f"{path}.starts_at") if spec.starts_at else None
    ends_at = parse_when(spec.ends_at, tz, field=f"{path}.ends_at") if spec.ends_at else None
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise DefinitionError("`ends_at` must come after `starts_at`", field=f"{path}.ends_at")
    eligibility = _filter(spec.eligibility, path=f"{path}.eligibility")
    if eligibility is not None:
        member_only(eligibility, f"{path}.eligibility")
    return Campaign(
        id=campaign_id,
        key=spec.key,
        title=spec.title,
        description=spec.description,
        starts_at=starts_at,
        ends_at=ends_at,
        status=spec.status,
        eligibility=eligibility,
        opt_in=spec.opt_in,
    )


def _match(event_type: str, filter_: Filter | None, *, path: str) -> Match:
    return Match(event_type=event_type, filter=_filter(filter_, path=f"{path}.filter"))


def build_rule(spec: RuleSpec, *, path: str = "$.rule") -> Rule:
    """Compile a rule spec (filters parsed).

    Raises:
        DefinitionError: a bad filter or inconsistent streak settings.
    """
    match spec:
        case CountSpec():
            return Count(match=_match(spec.event_type, spec.filter, path=path), target=spec.target)
        case SumSpec():
            return Sum(
                match=_match(spec.event_type, spec.filter, path=path), property=spec.property, target=spec.target
            )
        case StreakSpec():
            if spec.earn_freeze_every and not spec.freezes:
                raise DefinitionError(
                    "`earn_freeze_every` needs `freezes` (the most a member can hold)", field=f"{path}.freezes"
                )
            return Streak(
                match=_match(spec.event_type, spec.filter, path=path),
                target=spec.target,
                period=spec.period,
                grace=spec.grace,
                freezes=spec.freezes,
                earn_freeze_every=spec.earn_freeze_every,
            )
        case DistinctSpec():
            return Distinct(
                match=_match(spec.event_type, spec.filter, path=path), property=spec.property, target=spec.target
            )
        case SequenceSpec() | AllOfSpec():
            steps = tuple(
                _match(step.event_type, step.filter, path=f"{path}.steps[{i}]") for i, step in enumerate(spec.steps)
            )
            if isinstance(spec, SequenceSpec):
                return Sequence(steps=steps)
            if spec.required is not None and spec.required > len(steps):
                raise DefinitionError(
                    f"`required` is {spec.required} but the rule has only {len(steps)} steps", field=f"{path}.required"
                )
            return AllOf(steps=steps, required=spec.required or 0)
        case FirstSpec():
            return First(match=_match(spec.event_type, spec.filter, path=path))
    raise AssertionError(f"unknown rule spec {spec!r}")  # pragma: no cover


def build_challenge(
    spec: ChallengeSpec,
    *,
    campaign: Campaign,
    tz: ZoneInfo,
    path: str = "$",
    challenge_id: int = 0,
    live_since: datetime | None = None,
    position: int = 0,
) -> Challenge:
    """Validate a challenge spec against its campaign and compile it.

    Raises:
        DefinitionError: anything inconsistent, named by its path (``$.challenges[2].rule.filter.gte``…).
    """
    rule = build_rule(spec.rule, path=f"{path}.rule")
    kind = spec.rule.__struct_config__.tag
    if spec.recurrence == "none" and spec.max_completions not in (None, 1):
        raise DefinitionError(
            "a one-off challenge completes once; set `recurrence` to repeat it", field=f"{path}.max_completions"
        )
    if isinstance(rule, First) and spec.recurrence != "none":
        raise DefinitionError("a `first` challenge cannot recur", field=f"{path}.recurrence")
    if kind not in ("count", "sum"):
        if spec.daily_cap is not None:
            raise DefinitionError(f"`daily_cap` applies to count and sum rules, not {kind}", field=f"{path}.daily_cap")
        if spec.multipliers:
            raise DefinitionError(
                f"`multipliers` apply to count and sum rules, not {kind}", field=f"{path}.multipliers"
            )
    for index, multiplier in enumerate(spec.multipliers):
        if multiplier.ends_at <= multiplier.starts_at:
            raise DefinitionError("`ends_at` must come after `starts_at`", field=f"{path}.multipliers[{index}]")
    backfill_from = parse_when(spec.backfill_from, tz, field=f"{path}.backfill_from") if spec.backfill_from else None
    return Challenge(
        id=challenge_id,
        key=spec.key,
        campaign=campaign,
        title=spec.title,
        description=spec.description,
        rule=rule,
        recurrence=spec.recurrence,
        max_completions=spec.max_completions,
        reward=Reward(points=spec.reward.points, badge=spec.reward.badge),
        min_interval=parse_duration(spec.min_interval) if spec.min_interval else None,
        max_lateness=parse_duration(spec.max_lateness) if spec.max_lateness else None,
        daily_cap=spec.daily_cap,
        multipliers=tuple(spec.multipliers),
        live_since=live_since,
        backfill_from=backfill_from,
        position=position,
        kind=rule_kind(rule),
        patterns=rule_matches(rule),
        goal=rule_target(rule),
        requires=build_requirements(spec.requires, key=spec.key, path=f"{path}.requires"),
    )


def parse_campaigns(data: Any, *, path: str = "$.campaigns", tz: ZoneInfo | None = None) -> list[CampaignSpec]:
    """Decode and validate a list of campaign specs (keys unique; each compiles).

    Raises:
        DefinitionError: the first mistake, by path.
    """
    specs = decode(data, list[CampaignSpec], path=path)
    seen: set[str] = set()
    for index, spec in enumerate(specs):
        if spec.key in seen:
            raise DefinitionError(f"campaign {spec.key!r} appears twice", field=f"{path}[{index}].key")
        seen.add(spec.key)
        build_campaign(spec, tz=tz or _utc(), path=f"{path}[{index}]")
    return specs


def parse_challenges(data: Any, *, path: str = "$.challenges", tz: ZoneInfo | None = None) -> list[ChallengeSpec]:
    """Decode and validate a list of challenge specs (keys unique; rules compile).

    Raises:
        DefinitionError: the first mistake, by path.
    """
    specs = decode(data, list[ChallengeSpec], path=path)
    seen: set[str] = set()
    placeholder = Campaign(id=0, key="", title="")
    for index, spec in enumerate(specs):
        if spec.key in seen:
            raise DefinitionError(f"challenge {spec.key!r} appears twice", field=f"{path}[{index}].key")
        seen.add(spec.key)
        build_challenge(spec, campaign=placeholder, tz=tz or _utc(), path=f"{path}[{index}]")
    check_requirements((spec, f"{path}[{index}]") for index, spec in enumerate(specs))
    return specs


def check_requirements(specs: Iterable[tuple[ChallengeSpec, str]]) -> None:
    """Check a whole program's prerequisites: each required challenge exists, and there is no cycle.

    Raises:
        DefinitionError: an unknown key or a cycle, named by the path of a ``requires.challenges``.
    """
    check_graph(
        (spec.key, spec.requires.challenges if spec.requires else [], f"{where}.requires.challenges")
        for spec, where in specs
    )


def compile_program(campaigns: list[CampaignSpec], challenges: list[ChallengeSpec], *, tz: ZoneInfo) -> list[Challenge]:
    """Compile a whole draft program (for simulation), checking that every challenge's campaign exists.

    Raises:
        DefinitionError: a challenge names a campaign the program does not have.
    """
    by_key = {
        spec.key: build_campaign(spec, tz=tz, path=f"$.campaigns[{i}]", campaign_id=i + 1)
        for i, spec in enumerate(campaigns)
    }
    check_requirements((spec, f"$.challenges[{index}]") for index, spec in enumerate(challenges))
    compiled: list[Challenge] = []
    for index, spec in enumerate(challenges):
        campaign = by_key.get(spec.campaign)
        if campaign is None:
            raise DefinitionError(f"no campaign {spec.campaign!r}", field=f"$.challenges[{index}].campaign")
        compiled.append(
            build_challenge(
                spec,
                campaign=campaign,
                tz=tz,
                path=f"$.challenges[{index}]",
                challenge_id=index + 1,
                position=index,
            )
        )
    return compiled


def _utc() -> ZoneInfo:
    return ZoneInfo("UTC")
