"""Request and response bodies of the tiers endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from tiers.models import Qualification, TierKey, TierSpec


class TierOut(msgspec.Struct, kw_only=True):
    """A tier definition with how many members hold it now."""

    tier: TierSpec
    rank: int
    """0 for the lowest tier."""
    members: int


class TierProgramOut(msgspec.Struct, kw_only=True):
    """The brand's tiers, lowest first, and how members qualify."""

    qualification: Qualification
    tiers: list[TierOut]


class OverrideIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A manual tier set by the brand until a date (then the job re-evaluates the member)."""

    tier: TierKey | None
    """The tier to hold (``null``: no tier)."""
    until: datetime
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class ChoiceIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A member's pick among the tier's ``choices``."""

    reward: TierKey


class ChoiceOut(msgspec.Struct, kw_only=True):
    """The benefit recorded (the brand fulfils it from the ``tier.benefit_chosen`` webhook)."""

    member: str
    tier: str
    reward: str


class SimulationIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A proposed program: the tiers (and optionally qualification) to compare with the current one."""

    tiers: list[TierSpec]
    qualification: Qualification | None = None


class SimulationOut(msgspec.Struct, kw_only=True):
    """How many members the proposed program would move (nothing was changed)."""

    members: int
    up: int
    down: int
    before: dict[str, int]
    """Members by tier now (``""``: no tier)."""
    after: dict[str, int]


class TierStatsOut(msgspec.Struct, kw_only=True):
    """Members per tier now and at the end of each of the last days."""

    distribution: dict[str, int]
    over_time: list[dict[str, Any]]


class EvaluationOut(msgspec.Struct, kw_only=True):
    """What a re-evaluation run did."""

    renewed: int
    downgraded: int
    upgraded: int
    kept: int
    overrides_ended: int
    birthdays: int
