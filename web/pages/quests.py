"""Challenge cards for the portal: progress, what opens a locked challenge, N of M, in the member's language."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import msgspec

from challenges.models import CampaignState
from challenges.views import MemberChallenge
from web.i18n import Localized, Translator


def lock_lines(view: MemberChallenge, tier_names: Mapping[str, str], t: Translator) -> list[str]:
    """Each thing that still keeps the challenge closed ("Complete “Starter” first", "For Gold members")."""
    lock = view.locked
    if lock is None:
        return []
    lines = [t("Complete “%(title)s” first", title=required.title) for required in lock.challenges]
    if lock.tiers:
        names = [tier_names.get(tier, tier) for tier in lock.tiers]
        lines.append(t("For %(tiers)s members", tiers=", ".join(names)))
    if lock.condition:
        lines.append(t("Not open to you yet"))
    return lines


def tasks_line(view: MemberChallenge, t: Translator) -> str:
    """``2 of 3 tasks`` for an N-of-M challenge (empty for any other)."""
    if view.required is None:
        return ""
    done = sum(1 for step in view.steps or [] if step.done)
    return t.plural(
        "%(done)s of %(required)s task",
        "%(done)s of %(required)s tasks",
        view.required,
        done=done,
        required=view.required,
    )


class StepLine(msgspec.Struct, frozen=True, kw_only=True):
    """One step of a multi-step challenge."""

    label: str
    done: bool


class ChallengeCard(msgspec.Struct, frozen=True, kw_only=True):
    """A challenge as the portal shows it."""

    key: str
    title: str
    description: str
    campaign_title: str
    kind: str
    state: str
    """``scheduled``, ``active``, ``paused`` or ``ended`` (the campaign's state)."""
    completed: bool
    value: float
    target: float
    percent: int
    unit: str
    starts_at: datetime | None
    deadline: datetime | None
    """When the current instance (or the campaign) ends."""
    completed_at: datetime | None
    recurrence: str
    reward_points: int
    reward_badge: str
    needs_opt_in: bool
    opted_in: bool
    steps: list[StepLine] = []
    streak_current: int | None = None
    streak_longest: int | None = None
    heading: Localized | None = None
    """The title with the language it is written in (brand content given per locale)."""
    tasks: str = ""
    """N of M: "2 of 3 tasks"."""
    locks: list[str] = []
    """What still opens the challenge ("Complete “Starter” first"); empty when it is open."""


def _unit(view: MemberChallenge, t: Translator) -> str:
    match view.type:
        case "streak":
            period = view.streak.period if view.streak is not None else "day"
            return t.label("unit", f"{period}s")
        case "distinct":
            return t("different")
        case "sequence" | "all_of":
            return t("steps")
        case "sum":
            return ""
        case _:
            return t("times")


def card(
    view: MemberChallenge,
    badge_names: Mapping[str, str],
    recurrence: Mapping[str, str],
    t: Translator,
    tier_names: Mapping[str, str],
) -> ChallengeCard:
    """A challenge as the portal shows it, in the member's language."""
    completed = view.status in {"completed", "capped"}
    return ChallengeCard(
        key=view.key,
        title=view.title,
        description=view.description,
        campaign_title=view.campaign_title,
        kind=view.type,
        state=view.state.value if view.state is not CampaignState.DRAFT else "scheduled",
        completed=completed,
        value=view.progress,
        target=view.target,
        percent=view.percent,
        unit=_unit(view, t),
        starts_at=view.starts_at,
        deadline=view.ends_at,
        completed_at=view.completed_at,
        recurrence=recurrence.get(view.key, "none"),
        reward_points=view.reward.points,
        reward_badge=badge_names.get(view.reward.badge, view.reward.badge) if view.reward.badge else "",
        needs_opt_in=view.requires_opt_in,
        opted_in=view.opted_in,
        steps=[StepLine(label=t.event(step.event_type), done=step.done) for step in view.steps or []],
        streak_current=view.streak.current if view.streak is not None else None,
        streak_longest=view.streak.longest if view.streak is not None else None,
        heading=Localized(text=view.title, lang=view.lang),
        tasks=tasks_line(view, t),
        locks=lock_lines(view, tier_names, t),
    )
