"""League values and rules: definitions, cohort placement, standings with zones, promotion and relegation.

Pure; no I/O. Scores arrive as integers where higher is better (the board's order already applied).

Ties at the boundaries are resolved in the member's favour (documented in docs/leagues.md):

* a member is **promoted** when fewer than K members of the cohort scored strictly better (competition
  rank ≤ K): everyone tied at rank K goes up, so the zone may hold more than K;
* a member is **relegated** when the members scoring as low or lower number at most K: a tie that
  straddles the bottom boundary stays down only if the whole tie fits in the bottom K, so the zone may hold
  fewer than K;
* promotion wins over relegation in a cohort too small to keep them apart; the top division promotes no
  one and the bottom one relegates no one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec

from engine.errors import DefinitionError

if TYPE_CHECKING:
    from datetime import datetime

LeagueKey = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")]
Title = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Zone = Literal["promotion", "relegation", "stay"]
MAX_COHORT = 1000


class DivisionReward(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Points for the cohort ranks ``from_rank``…``to_rank`` (inclusive) of a division at the period's close."""

    from_rank: Annotated[int, msgspec.Meta(ge=1, le=MAX_COHORT)] = 1
    to_rank: Annotated[int, msgspec.Meta(ge=1, le=MAX_COHORT)]
    points: Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)]


class Division(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One division (lowest first in a league's list)."""

    key: LeagueKey
    title: Title
    rewards: list[DivisionReward] = []


class LeagueSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A league definition (API body and program-document entry)."""

    key: LeagueKey
    title: Title
    board: LeagueKey
    """The board whose metric and period (daily, weekly or monthly) the league ranks by."""
    divisions: Annotated[list[Division], msgspec.Meta(min_length=2, max_length=20)]
    """Lowest first: new members start in the first."""
    cohort_size: Annotated[int, msgspec.Meta(ge=2, le=MAX_COHORT)] = 30
    promote: Annotated[int, msgspec.Meta(ge=0, le=MAX_COHORT)] = 5
    relegate: Annotated[int, msgspec.Meta(ge=0, le=MAX_COHORT)] = 5
    active: bool = True


def check_spec(spec: LeagueSpec, *, path: str = "$") -> LeagueSpec:
    """Reject what the field limits cannot: duplicate divisions, zones that overlap, reversed reward ranks.

    Raises:
        DefinitionError: naming the offending field.
    """
    keys = [d.key for d in spec.divisions]
    if len(set(keys)) != len(keys):
        raise DefinitionError("division keys must differ", field=f"{path}.divisions")
    if spec.promote + spec.relegate > spec.cohort_size:
        raise DefinitionError("promote + relegate exceeds the cohort size", field=f"{path}.promote")
    for i, division in enumerate(spec.divisions):
        for j, reward in enumerate(division.rewards):
            if reward.from_rank > reward.to_rank:
                raise DefinitionError(
                    "from_rank is after to_rank", field=f"{path}.divisions[{i}].rewards[{j}].from_rank"
                )
    return spec


@dataclass(frozen=True, slots=True)
class Score:
    """A member's score in the board's period: ``value`` higher is better; ``reached_at`` orders joins."""

    member_id: int
    value: int
    reached_at: datetime


@dataclass(frozen=True, slots=True)
class Standing:
    """A member's place in their cohort."""

    member_id: int
    rank: int
    value: int
    zone: Zone


def open_cohort(sizes: dict[int, int], cohort_size: int) -> int:
    """The cohort a newcomer joins: the last one while it has room, else a new one (numbered from 1)."""
    if not sizes:
        return 1
    last = max(sizes)
    return last if sizes[last] < cohort_size else last + 1


def place_newcomers(sizes: dict[int, int], count: int, cohort_size: int) -> list[int]:
    """Cohorts for ``count`` newcomers of one division in join order; updates ``sizes`` as it fills them."""
    cohorts: list[int] = []
    for _ in range(count):
        cohort = open_cohort(sizes, cohort_size)
        sizes[cohort] = sizes.get(cohort, 0) + 1
        cohorts.append(cohort)
    return cohorts


def join_order(scores: list[Score]) -> list[Score]:
    """Newcomers of one round in the order they joined: who reached their score first, then member id."""
    return sorted(scores, key=lambda s: (s.reached_at, s.member_id))


def standings(values: dict[int, int], *, promote: int, relegate: int, top: bool, bottom: bool) -> list[Standing]:
    """A cohort's standings, best first, with competition ranks and zones (see the module docstring)."""
    ordered = sorted(values.items(), key=lambda item: (-item[1], item[0]))
    out: list[Standing] = []
    for member_id, value in ordered:
        better = sum(1 for v in values.values() if v > value)
        as_low = sum(1 for v in values.values() if v <= value)
        zone: Zone = "stay"
        if not top and better < promote:
            zone = "promotion"
        elif not bottom and as_low <= relegate:
            zone = "relegation"
        out.append(Standing(member_id=member_id, rank=better + 1, value=value, zone=zone))
    return out


def next_division(divisions: list[str], current: str, zone: Zone) -> str:
    """The division a member plays next period after finishing in ``zone``."""
    index = divisions.index(current) if current in divisions else 0
    if zone == "promotion":
        index = min(index + 1, len(divisions) - 1)
    elif zone == "relegation":
        index = max(index - 1, 0)
    return divisions[index]


def reward_points(division: Division, rank: int) -> int:
    """Points a cohort rank earns in ``division`` (the sum of every reward band that names it)."""
    return sum(r.points for r in division.rewards if r.from_rank <= rank <= r.to_rank)
