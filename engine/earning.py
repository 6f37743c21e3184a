"""Earning rules: how many points an event is worth. Pure; no I/O.

A rule matches an event type and an optional filter, and gives either a fixed number of points or
points per unit of a numeric property (1 point per euro spent). An optional per-member daily cap (in the
brand's timezone) and time-limited multipliers (double points this weekend) refine it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from engine.effects import PointsAwarded
from engine.errors import DefinitionError, ValidationError
from engine.events import AwareDatetime, Event, EventType
from engine.periods import in_window, local_day
from engine.predicates import Predicate, parse_predicate, predicate_to_data
from engine.predicates import matches as predicate_matches

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import date, datetime
    from zoneinfo import ZoneInfo

RuleKey = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")]
MAX_POINTS_PER_EVENT = 1_000_000_000


class PerUnit(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Points for each unit of a numeric property, rounded down."""

    property: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    points: Annotated[float, msgspec.Meta(gt=0, le=1_000_000)] = 1.0


class Multiplier(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A factor applied to a rule's points for events that occurred in ``[starts_at, ends_at)``."""

    starts_at: AwareDatetime
    ends_at: AwareDatetime
    factor: Annotated[float, msgspec.Meta(gt=0, le=100)]


class EarningRuleSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The wire and config form of an earning rule (``filter`` still plain data)."""

    key: RuleKey
    event_type: EventType
    points: Annotated[int, msgspec.Meta(ge=0, le=MAX_POINTS_PER_EVENT)] = 0
    per_unit: PerUnit | None = None
    filter: dict[str, Any] | None = None
    daily_cap: Annotated[int, msgspec.Meta(gt=0, le=MAX_POINTS_PER_EVENT)] | None = None
    multipliers: list[Multiplier] = []
    active: bool = True
    description: Annotated[str, msgspec.Meta(max_length=500)] = ""
    holding_days: Annotated[int, msgspec.Meta(ge=0, le=365)] = 0
    """Points stay pending this many days after the event (a return window) before they can be spent."""


class EarningRule(msgspec.Struct, frozen=True, kw_only=True):
    """A validated earning rule, ready to evaluate."""

    key: str
    event_type: str
    points: int = 0
    per_unit: PerUnit | None = None
    filter: Predicate | None = None
    daily_cap: int | None = None
    multipliers: tuple[Multiplier, ...] = ()
    active: bool = True
    description: str = ""
    holding_days: int = 0


def build_rule(spec: EarningRuleSpec, *, path: str = "rule") -> EarningRule:
    """Validate a spec and compile its filter.

    Raises:
        DefinitionError: no points given, both fixed and per-unit points, a bad filter or multiplier.
    """
    if spec.per_unit is None and spec.points == 0:
        raise DefinitionError("give `points` or `per_unit`", field=f"{path}.points")
    if spec.per_unit is not None and spec.points:
        raise DefinitionError("give either `points` or `per_unit`, not both", field=f"{path}.per_unit")
    for index, multiplier in enumerate(spec.multipliers):
        if multiplier.ends_at <= multiplier.starts_at:
            raise DefinitionError("`ends_at` must come after `starts_at`", field=f"{path}.multipliers[{index}]")
    return EarningRule(
        key=spec.key,
        event_type=spec.event_type,
        points=spec.points,
        per_unit=spec.per_unit,
        filter=parse_predicate(spec.filter, path=f"{path}.filter") if spec.filter is not None else None,
        daily_cap=spec.daily_cap,
        multipliers=tuple(spec.multipliers),
        active=spec.active,
        description=spec.description,
        holding_days=spec.holding_days,
    )


def rule_to_spec(rule: EarningRule) -> EarningRuleSpec:
    """The plain form of a rule, for storage and display."""
    return EarningRuleSpec(
        key=rule.key,
        event_type=rule.event_type,
        points=rule.points,
        per_unit=rule.per_unit,
        filter=predicate_to_data(rule.filter) if rule.filter is not None else None,
        daily_cap=rule.daily_cap,
        multipliers=list(rule.multipliers),
        active=rule.active,
        description=rule.description,
        holding_days=rule.holding_days,
    )


def multiplier_at(rule: EarningRule, instant: datetime) -> float:
    """The product of the rule's multipliers active at ``instant`` (1.0 when none)."""
    factor = 1.0
    for multiplier in rule.multipliers:
        if in_window(instant, multiplier.starts_at, multiplier.ends_at):
            factor *= multiplier.factor
    return factor


def base_points(rule: EarningRule, event: Event, *, path: str = "properties") -> int | None:
    """Points before multiplier and cap, or ``None`` when the rule's property is absent or not a number.

    Raises:
        ValidationError: the property is a number, but the points it gives exceed the per-event limit.
    """
    if rule.per_unit is None:
        return rule.points
    value = event.properties.get(rule.per_unit.property)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    points = math.floor(value * rule.per_unit.points + 1e-9)
    if points > MAX_POINTS_PER_EVENT:
        raise ValidationError(
            f"{rule.per_unit.property}={value} would earn more than {MAX_POINTS_PER_EVENT} points",
            field=f"{path}.{rule.per_unit.property}",
        )
    return points


def evaluate(
    rules: tuple[EarningRule, ...],
    event: Event,
    member: Mapping[str, Any],
    *,
    tz: ZoneInfo,
    earned_today: dict[tuple[str, date], int],
    path: str = "properties",
    tier_factor: float = 1.0,
) -> list[PointsAwarded]:
    """The points ``event`` earns under ``rules``.

    ``tier_factor`` is the member's tier multiplier; it stacks with a rule's time-limited multipliers by
    multiplying (a 2x weekend for a 1.5x Gold member gives 3x), before the daily cap.
    ``earned_today`` maps (rule key, local day) to points the member already earned from that rule that
    day; it is updated in place, so evaluating a member's events in order respects each daily cap.
    """
    effects: list[PointsAwarded] = []
    for rule in rules:
        if not rule.active or rule.event_type != event.type:
            continue
        if rule.filter is not None and not predicate_matches(
            rule.filter, event_type=event.type, properties=event.properties, member=member
        ):
            continue
        points = base_points(rule, event, path=path)
        if points is None:
            continue
        factor = (multiplier_at(rule, event.occurred_at) if rule.multipliers else 1.0) * tier_factor
        points = min(math.floor(points * factor + 1e-9), MAX_POINTS_PER_EVENT)
        capped = False
        if rule.daily_cap is not None:
            slot = (rule.key, local_day(event.occurred_at, tz))
            already = earned_today.get(slot, 0)
            allowed = max(rule.daily_cap - already, 0)
            if points > allowed:
                points, capped = allowed, True
            earned_today[slot] = already + points
        if points > 0 or capped:
            effects.append(PointsAwarded(points=points, source="rule", key=rule.key, multiplier=factor, capped=capped))
    return effects
