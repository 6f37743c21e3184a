"""Personalised offers and their experiments, as validated values and pure rules. No I/O.

An offer gives a bonus on a qualifying event — a multiplier of the points the event's earning rules gave,
or fixed points — to the members it targets (a segment, or a list of external ids), inside a window, at
most ``per_member_limit`` times per member, and never more than ``budget`` points in total (the database
enforces that: see :mod:`segments.offer_repository`). Opt-in offers apply only once the member activated
them. With an ``experiment`` the targeted members are split into arms by a deterministic hash of
(offer, member): the control arm gets nothing, and the report compares each arm with it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from engine.errors import DefinitionError
from engine.predicates import Predicate, matches_event, parse_predicate
from segments.models import Names, Short, Slug

ExternalId = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
BUCKETS = 10_000
"""Hash buckets of an allocation: percentages are honoured to 0.01 %."""
MAX_ARMS = 5


class Arm(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One arm of an experiment: its share of the targeted members and, for a variant, its own bonus."""

    key: Slug
    percent: Annotated[float, msgspec.Meta(gt=0, le=100)]
    control: bool = False
    multiplier: Annotated[float, msgspec.Meta(gt=1, le=20)] | None = None
    points: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None


class Experiment(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An A/B test of the offer: arms whose percentages add up to 100, exactly one of them the control."""

    arms: Annotated[list[Arm], msgspec.Meta(min_length=2, max_length=MAX_ARMS)]


class OfferDef(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A personalised offer."""

    key: Slug
    title: Names = {}
    description: Names = {}
    kind: Literal["multiplier", "bonus"]
    multiplier: Annotated[float, msgspec.Meta(gt=1, le=20)] = 2.0
    """``multiplier``: the factor applied to the points the qualifying event earned (the bonus is the excess)."""
    points: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0
    """``bonus``: fixed points given on the next qualifying event."""
    event_type: Short
    filter: dict[str, Any] | None = None
    segment: Slug | None = None
    members: Annotated[list[ExternalId], msgspec.Meta(max_length=10_000)] = []
    starts_at: datetime
    ends_at: datetime
    per_member_limit: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1
    budget: Annotated[int, msgspec.Meta(ge=1, le=10**12)] | None = None
    opt_in: bool = False
    experiment: Experiment | None = None

    def text(self, field: Names, locale: str) -> str:
        """``field`` (title or description) in ``locale``, its language, English or any."""
        lang = locale.split("-")[0].split("_")[0]
        for candidate in (locale, lang, "en"):
            if field.get(candidate):
                return field[candidate]
        return next(iter(field.values()), "")


def validate(offer: OfferDef, *, path: str = "$") -> tuple[OfferDef, Predicate | None]:
    """Check an offer beyond its schema; returns it with its parsed filter.

    Raises:
        DefinitionError: naming the field.
    """
    if offer.ends_at.tzinfo is None or offer.starts_at.tzinfo is None:
        raise DefinitionError("`starts_at` and `ends_at` need a UTC offset", field=f"{path}.starts_at")
    if offer.ends_at <= offer.starts_at:
        raise DefinitionError("`ends_at` must be after `starts_at`", field=f"{path}.ends_at")
    if (offer.segment is None) == (not offer.members):
        raise DefinitionError("target either a `segment` or a list of `members`", field=f"{path}.segment")
    if offer.kind == "bonus" and offer.points <= 0:
        raise DefinitionError("a `bonus` offer needs `points`", field=f"{path}.points")
    predicate = None if offer.filter is None else parse_predicate(offer.filter, path=f"{path}.filter")
    if offer.experiment is not None:
        arms = offer.experiment.arms
        where = f"{path}.experiment.arms"
        if abs(sum(a.percent for a in arms) - 100) > 1e-9:
            raise DefinitionError("the arms' percentages must add up to 100", field=where)
        if sum(a.control for a in arms) != 1:
            raise DefinitionError("exactly one arm must be the control", field=where)
        if len({a.key for a in arms}) != len(arms):
            raise DefinitionError("arm keys must differ", field=where)
    return offer, predicate


def bucket(offer_key: str, member: str) -> int:
    """The member's bucket (0…9999) for the offer: a SHA-256 of both, the same on every node and restart."""
    digest = hashlib.sha256(f"{offer_key}\x00{member}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def arm_of(offer: OfferDef, member: str) -> Arm | None:
    """The experiment arm of ``member`` (external id): arms take consecutive bucket ranges by percentage."""
    if offer.experiment is None:
        return None
    position = bucket(offer.key, member)
    edge = 0.0
    arms = offer.experiment.arms
    for arm in arms:
        edge += arm.percent * BUCKETS / 100
        if position < round(edge):
            return arm
    return arms[-1]


def targets(offer: OfferDef, *, member: str, segments: frozenset[str] | set[str] | tuple[str, ...]) -> bool:
    """Whether the offer targets ``member`` (external id) in ``segments``."""
    if offer.segment is not None:
        return offer.segment in segments
    return member in offer.members


def qualifies(
    offer: OfferDef, predicate: Predicate | None, *, event_type: str, properties: dict[str, Any],
    member: dict[str, Any] | Any, occurred_at: datetime,
) -> bool:  # fmt: skip
    """Whether an event is a qualifying event of the offer (type, filter, inside the window)."""
    if not offer.starts_at <= occurred_at < offer.ends_at:
        return False
    return matches_event(offer.event_type, predicate, event_type=event_type, properties=properties, member=member)


def bonus(offer: OfferDef, arm: Arm | None, *, earned: int) -> int:
    """The points the offer gives on a qualifying event that earned ``earned`` rule points (0 for control)."""
    if arm is not None and arm.control:
        return 0
    if offer.kind == "bonus":
        return arm.points if arm is not None and arm.points else offer.points
    factor = arm.multiplier if arm is not None and arm.multiplier else offer.multiplier
    return max(0, round(earned * (factor - 1)))
