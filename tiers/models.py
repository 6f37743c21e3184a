"""Tier definitions and the program-level qualification, as validated values. Pure; no I/O."""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

import msgspec

from engine.errors import DefinitionError
from engine.texts import text_in

TierKey = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")]
Names = (
    Annotated[str, msgspec.Meta(max_length=200)]
    | dict[Annotated[str, msgspec.Meta(max_length=16)], Annotated[str, msgspec.Meta(max_length=200)]]
)
"""A text per locale (``{en: Gold, it: Oro}``) or one plain string."""
MetricKind = Literal["points_earned", "property_sum", "event_count", "challenges_completed"]
WindowKind = Literal["rolling", "calendar_year", "anniversary"]
MAX_TIERS = 20


class Metric(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What qualifies: points earned (never reduced by spending), a summed property, an event count, completions."""

    kind: MetricKind = "points_earned"
    property: Annotated[str, msgspec.Meta(max_length=100)] = ""
    """``property_sum``: the numeric event property to add up (e.g. ``amount``)."""
    event_types: list[Annotated[str, msgspec.Meta(max_length=64)]] = []
    """``event_count`` (required) and ``property_sum`` (optional): the event types that count."""

    def signature(self) -> str:
        """A short stable id of the metric: counters of another metric are never mixed in."""
        raw = msgspec.json.encode(self)
        return hashlib.sha256(raw).hexdigest()[:16]


class Window(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Over which span the metric is summed, in the brand's timezone."""

    kind: WindowKind = "calendar_year"
    days: Annotated[int, msgspec.Meta(ge=1, le=3660)] = 365
    """``rolling`` only: the last N local days, today included."""


class Qualification(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The program-level rules: metric, window, grace period, minimum stay, birthday bonus."""

    metric: Metric = msgspec.field(default_factory=Metric)
    window: Window = msgspec.field(default_factory=Window)
    grace_days: Annotated[int, msgspec.Meta(ge=0, le=365)] = 0
    """Days after a window ends during which the member can still reach the threshold before a downgrade."""
    keep_months: Annotated[int, msgspec.Meta(ge=0, le=120)] = 0
    """A member keeps a tier at least this many months after reaching it."""
    unit: Annotated[str, msgspec.Meta(max_length=16)] = "points"
    """How the portal names the metric's unit (``points``, ``€``, ``visits``)."""


class TierSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One tier: names per locale, look, threshold and benefits."""

    key: TierKey
    name: Names = {}
    color: Annotated[str, msgspec.Meta(pattern=r"^#[0-9a-fA-F]{6}$")] = "#6b7280"
    icon: Annotated[str, msgspec.Meta(max_length=64)] = ""
    threshold: Annotated[float, msgspec.Meta(ge=0, le=1e12)] = 0
    multiplier: Annotated[float, msgspec.Meta(gt=0, le=100)] = 1.0
    """Earning multiplier for members in this tier (multiplies a rule's time-limited multipliers)."""
    perks: list[Names] = []
    """Benefits shown to members, each a text per locale."""
    choices: list[TierKey] = []
    """"Choose your benefit": reward keys a member reaching this tier may pick one of, once."""
    birthday_points: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0
    badge: Annotated[str, msgspec.Meta(max_length=64)] = ""
    """A badge awarded on reaching the tier (through the badges domain)."""

    def label(self, locale: str) -> str:
        """The name in ``locale`` (or its language, English, any), else the key."""
        return text_in(self.name, locale) or self.key


class TierProgram(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A brand's tiers, lowest first, and how members qualify."""

    qualification: Qualification = msgspec.field(default_factory=Qualification)
    tiers: list[TierSpec] = []

    def get(self, key: str | None) -> TierSpec | None:
        """The tier called ``key``, if defined."""
        return next((t for t in self.tiers if t.key == key), None) if key else None

    def rank(self, key: str | None) -> int:
        """Position of ``key`` (0 = lowest); -1 for no tier or an unknown one."""
        return next((i for i, t in enumerate(self.tiers) if t.key == key), -1) if key else -1


def build_program(program: TierProgram, *, path: str = "$") -> TierProgram:
    """Validate a program and order its tiers by threshold.

    Raises:
        DefinitionError: duplicate keys, equal thresholds, too many tiers, a metric missing what it needs.
    """
    tiers = sorted(program.tiers, key=lambda t: t.threshold)
    if len(tiers) > MAX_TIERS:
        raise DefinitionError(f"at most {MAX_TIERS} tiers", field=f"{path}.tiers")
    seen: set[str] = set()
    for index, tier in enumerate(tiers):
        if tier.key in seen:
            raise DefinitionError(f"tier {tier.key!r} is defined twice", field=f"{path}.tiers[{index}].key")
        seen.add(tier.key)
        if index and tier.threshold == tiers[index - 1].threshold:
            raise DefinitionError(
                f"tiers {tiers[index - 1].key!r} and {tier.key!r} have the same threshold",
                field=f"{path}.tiers[{index}].threshold",
            )
    metric = program.qualification.metric
    if metric.kind == "property_sum" and not metric.property:
        raise DefinitionError("a `property_sum` metric needs `property`", field=f"{path}.qualification.metric.property")
    if metric.kind == "event_count" and not metric.event_types:
        raise DefinitionError(
            "an `event_count` metric needs `event_types`", field=f"{path}.qualification.metric.event_types"
        )
    return msgspec.structs.replace(program, tiers=tiers)
