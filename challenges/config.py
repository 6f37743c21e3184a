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
    Campaign,
    CampaignStatus,
    Challenge,
    First,
    Recurrence,
    Reward,
    rule_kind,
    rule_matches,
    rule_target,
)
from challenges.requirements import RequiresSpec, build_requirements, member_only
from challenges.rule_specs import Filter, RuleSpec, build_rule
from engine.earning import Multiplier
from engine.errors import DefinitionError
from engine.predicates import Predicate, parse_predicate
from engine.texts import LocaleTag, check_text, text_in, translations

T = TypeVar("T")

Key = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")]
BadgeKey = Annotated[str, msgspec.Meta(max_length=64, pattern=r"^([a-z0-9][a-z0-9_\-]*)?$")]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Text = Annotated[str, msgspec.Meta(max_length=2000)]
When = Annotated[str, msgspec.Meta(min_length=10, max_length=40)]
Duration = Annotated[str, msgspec.Meta(pattern=r"^[1-9][0-9]{0,5}[smhdw]$")]
"""A positive whole number of seconds, minutes, hours, days or weeks: ``90s``, ``15m``, ``6h``, ``7d``, ``2w``."""

_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PATH = re.compile(r" - at `\$(?P<path>[^`]*)`$")


class _Spec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Base of definition specs: strict on input, concise on export."""


class RewardSpec(_Spec, frozen=True):
    """Bonus points (through the ledger) and a badge key."""

    points: Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)] = 0
    badge: BadgeKey = ""


class CampaignSpec(_Spec, frozen=True):
    """A timed campaign as written in a program document."""

    key: Key
    title: Title | dict[LocaleTag, Title]
    """A plain string, or one per locale (``{en: Autumn reviews, it: Recensioni d'autunno}``)."""
    description: Text | dict[LocaleTag, Text] = ""
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
    title: Title | dict[LocaleTag, Title]
    """A plain string, or one per locale (``{en: Coffee lover, it: Amante del caffè}``)."""
    rule: RuleSpec
    description: Text | dict[LocaleTag, Text] = ""
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
    check_text(spec.title, field=f"{path}.title", required=True)
    return Campaign(
        id=campaign_id,
        key=spec.key,
        title=text_in(spec.title),
        description=text_in(spec.description),
        texts=translations(title=spec.title, description=spec.description),
        starts_at=starts_at,
        ends_at=ends_at,
        status=spec.status,
        eligibility=eligibility,
        opt_in=spec.opt_in,
    )


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
    check_text(spec.title, field=f"{path}.title", required=True)
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
        title=text_in(spec.title),
        description=text_in(spec.description),
        texts=translations(title=spec.title, description=spec.description),
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

    Prerequisites between challenges are checked against the whole resulting program when it is applied
    or compiled (:func:`check_requirements`), since a list may be only part of it.

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
