"""Rule specs (the ``rule:`` of a challenge as written) and compiling them into :mod:`challenges.models` rules."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from challenges.models import (
    AllOf,
    Count,
    Distinct,
    First,
    Match,
    Rule,
    Sequence,
    Streak,
    StreakPeriod,
    Sum,
)
from engine.errors import DefinitionError
from engine.events import EventType
from engine.predicates import parse_predicate

MAX_STEPS = 20
PropertyName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[^.\s][^\s]*$")]
Filter = dict[str, Any]


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


def _match(event_type: str, filter_: Filter | None, *, path: str) -> Match:
    return Match(
        event_type=event_type, filter=None if filter_ is None else parse_predicate(filter_, path=f"{path}.filter")
    )


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
