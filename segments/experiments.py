"""The experiment report: per arm members, participation, points, events per member, uplift with a 95 % CI.

Pure. The outcome is *qualifying events per member* from assignment on. The uplift of an arm is the
difference of its mean from the control's mean, with Welch's standard error
``se = sqrt(s_a²/n_a + s_c²/n_c)`` (unequal variances, sample variances with n−1) and the normal
approximation ``diff ± 1.96·se`` for the 95 % interval; the Welch–Satterthwaite degrees of freedom are
reported so a reader can judge it (with fewer than ~30 members per arm the normal interval is too narrow).
The relative uplift is ``diff / mean_control``. See docs/segments.md.
"""

from __future__ import annotations

import math

import msgspec

Z95 = 1.959963984540054


class ArmTotals(msgspec.Struct, frozen=True, kw_only=True):
    """What SQL sums per arm: members, members who got the bonus, points, and events (sum and sum of squares)."""

    arm: str
    control: bool
    members: int
    participants: int
    points: int
    events: int
    events_sq: int


class Uplift(msgspec.Struct, frozen=True, kw_only=True):
    """An arm against control: difference of means, its 95 % interval, relative uplift, Welch df."""

    difference: float
    low: float
    high: float
    relative: float | None
    df: float | None


class ArmReport(msgspec.Struct, frozen=True, kw_only=True):
    """One arm of the report."""

    arm: str
    control: bool
    members: int
    participation: float
    points: int
    events_per_member: float
    uplift: Uplift | None = None


def mean_var(total: int, squares: int, n: int) -> tuple[float, float]:
    """Mean and sample variance (n−1) from a count, a sum and a sum of squares."""
    if n == 0:
        return 0.0, 0.0
    mean = total / n
    if n < 2:
        return mean, 0.0
    return mean, max(0.0, (squares - n * mean * mean) / (n - 1))


def welch(treated: ArmTotals, control: ArmTotals) -> Uplift | None:
    """The uplift of ``treated`` over ``control`` (``None`` when an arm has fewer than two members)."""
    if treated.members < 2 or control.members < 2:
        return None
    mean_t, var_t = mean_var(treated.events, treated.events_sq, treated.members)
    mean_c, var_c = mean_var(control.events, control.events_sq, control.members)
    a, b = var_t / treated.members, var_c / control.members
    se = math.sqrt(a + b)
    diff = mean_t - mean_c
    df = (a + b) ** 2 / (a * a / (treated.members - 1) + b * b / (control.members - 1)) if a + b > 0 else None
    return Uplift(
        difference=diff,
        low=diff - Z95 * se,
        high=diff + Z95 * se,
        relative=diff / mean_c if mean_c else None,
        df=df,
    )


def report(arms: list[ArmTotals]) -> list[ArmReport]:
    """The report of every arm, each non-control arm with its uplift against the control."""
    control = next((a for a in arms if a.control), None)
    out = []
    for totals in arms:
        uplift = welch(totals, control) if control is not None and not totals.control else None
        out.append(
            ArmReport(
                arm=totals.arm,
                control=totals.control,
                members=totals.members,
                participation=totals.participants / totals.members if totals.members else 0.0,
                points=totals.points,
                events_per_member=totals.events / totals.members if totals.members else 0.0,
                uplift=uplift,
            )
        )
    return out
