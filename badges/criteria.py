"""Pure badge logic: which events count, which awards are due, progress, and the member's shelf.

Nothing here touches a database. The processor loads counters and holdings, calls these functions, and
lets the database's unique key decide which planned awards are really new (see ``badges/orm.py``).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from badges.models import (
    Award,
    AwardOut,
    BadgeDef,
    BadgeProgressOut,
    EarnedBadge,
    Holding,
    Level,
    LockedBadge,
    MemberBadges,
    Planned,
    Progress,
)
from engine.errors import ValidationError
from engine.predicates import matches

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping


def rule_matches(badge: BadgeDef, *, event_type: str, properties: Mapping[str, Any], member: Mapping[str, Any]) -> bool:
    """Whether an event counts towards the badge's direct rule (an inactive badge counts nothing)."""
    rule = badge.rule
    if rule is None or not badge.active or rule.event_type != event_type:
        return False
    return matches(rule.filter, event_type=event_type, properties=properties, member=member)


def rule_awards(badge: BadgeDef, *, before: int, after: int, holding: Holding) -> list[Planned]:
    """The awards due when the member's count on the badge's rule moves from ``before`` to ``after``.

    A level is due once the count reaches its threshold and the member has no award of it (a revoked one
    included: revocation is not undone by an automatic source). A repeatable badge is due once per
    ``rule.count`` events; each award's instance is its ordinal, so a retry can never add another. The
    planned awards are recorded in ``holding`` so one unit of work does not plan them twice.
    """
    rule = badge.rule
    if rule is None:
        return []
    planned: list[Planned] = []
    if badge.levels:
        for level in badge.levels:
            if level.threshold <= after and level.key not in holding.levels:
                planned.append(Planned(level=level.key, instance="", points=level.points))
                holding.levels.add(level.key)
    elif badge.repeatable:
        for ordinal in range(before // rule.count + 1, after // rule.count + 1):
            planned.append(Planned(level="", instance=f"rule:{ordinal}", points=badge.points))
    elif after >= rule.count and "" not in holding.levels:
        planned.append(Planned(level="", instance="", points=badge.points))
        holding.levels.add("")
    return planned


def external_award(badge: BadgeDef, *, holding: Holding, instance: str, level: str = "") -> Planned | None:
    """The award a challenge, a leaderboard standing or a manual grant gives, or ``None`` when held.

    A repeatable badge is awarded once per ``instance`` (the source's own id, such as a challenge
    instance or a board period). A badge with levels gets ``level`` or, when none is named, its lowest
    level the member has no award of.

    Raises:
        ValidationError: ``level`` is not a level of the badge (or the badge has none).
    """
    if level:
        chosen = badge.level(level)
        if chosen is None:
            raise ValidationError(f"badge {badge.key!r} has no level {level!r}", field="level")
        if chosen.key in holding.levels:
            return None
        holding.levels.add(chosen.key)
        return Planned(level=chosen.key, instance="", points=chosen.points)
    if badge.repeatable:
        return Planned(level="", instance=instance, points=badge.points)
    if badge.levels:
        for candidate in badge.levels:
            if candidate.key not in holding.levels:
                holding.levels.add(candidate.key)
                return Planned(level=candidate.key, instance="", points=candidate.points)
        return None
    if "" in holding.levels:
        return None
    holding.levels.add("")
    return Planned(level="", instance="", points=badge.points)


MAX_INSTANCE = 320


def instance_key(source: str, ref: str) -> str:
    """The unique instance of a repeatable award from ``source`` and its reference (hashed when long)."""
    key = f"{source}:{ref}"
    if len(key) <= MAX_INSTANCE:
        return key
    return f"{source}:sha256:{hashlib.sha256(ref.encode()).hexdigest()}"


def _percent(current: int, target: int) -> float:
    return round(100.0 * min(current, target) / target, 1) if target > 0 else 100.0


def next_progress(badge: BadgeDef, *, count: int, live_levels: Iterable[str] = ()) -> Progress | None:
    """Progress towards the badge's next award: its next level, the next ×N, or the badge itself.

    ``None`` when nothing counts towards it (no rule) or every level is reached.
    """
    rule = badge.rule
    if rule is None:
        return None
    if badge.levels:
        top = max((badge.level_index(key) for key in live_levels), default=-1)
        for index, level in enumerate(badge.levels):
            if index > top and level.threshold > count:
                return Progress(
                    level=level.key,
                    level_name=level.name,
                    current=count,
                    target=level.threshold,
                    percent=_percent(count, level.threshold),
                )
        return None
    if badge.repeatable:
        current = count % rule.count
        return Progress(
            level="", level_name="", current=current, target=rule.count, percent=_percent(current, rule.count)
        )
    return Progress(
        level="", level_name="", current=min(count, rule.count), target=rule.count, percent=_percent(count, rule.count)
    )


def narrative(badge: BadgeDef, level: Level | None = None) -> str:
    """How to earn the badge (or one level of it), in words: the brand's text, or one made from the rule."""
    if badge.criteria and level is None:
        return badge.criteria
    rule = badge.rule
    if rule is None:
        return badge.criteria or "Awarded by the brand: complete a challenge, reach a standing or receive it."
    condition = " that meet the badge's conditions" if rule.filter is not None else ""
    if level is not None:
        base = f"{level.name}: record {level.threshold} {rule.event_type} event{'s' if level.threshold != 1 else ''}{condition}."
        return f"{badge.criteria} {base}".strip()
    if badge.levels:
        steps = ", ".join(f"{lv.name} at {lv.threshold}" for lv in badge.levels)
        return f"Count {rule.event_type} events{condition}: {steps}."
    every = "each time you record" if badge.repeatable else "record"
    return f"{every.capitalize()} {rule.count} {rule.event_type} event{'s' if rule.count != 1 else ''}{condition}."


def highest_level(badge: BadgeDef, levels: Iterable[str]) -> Level | None:
    """The highest of ``levels`` (by the badge's order), or ``None``."""
    best = max((badge.level_index(key) for key in levels), default=-1)
    return badge.levels[best] if best >= 0 else None


def _earned(
    badge: BadgeDef,
    held: list[Award],
    progress: Progress | None,
    share: float,
    image_url: Callable[[BadgeDef, str], str],
    award_out: Callable[[Award], AwardOut],
) -> EarnedBadge:
    """A badge the member holds (``held``: their live awards, oldest first), at its highest level."""
    top = highest_level(badge, {a.level for a in held})
    return EarnedBadge(
        key=badge.key,
        name=badge.name,
        description=badge.description,
        category=badge.category,
        image=image_url(badge, top.key if top else ""),
        level=top.key if top else "",
        level_name=top.name if top else "",
        count=len(held) if badge.repeatable else 1,
        awarded_at=held[0].awarded_at,
        last_awarded_at=held[-1].awarded_at,
        rarity=share,
        awards=[award_out(a) for a in held],
        next=progress if badge.active and (badge.levels or badge.repeatable) else None,
    )


def _working_towards(
    badge: BadgeDef, progress: Progress, share: float, image_url: Callable[[BadgeDef, str], str]
) -> BadgeProgressOut:
    """A badge (or its next level) the member has started on."""
    level = badge.level(progress.level) if progress.level else None
    return BadgeProgressOut(
        key=badge.key,
        name=badge.name,
        description=badge.description,
        category=badge.category,
        image=image_url(badge, progress.level),
        criteria=narrative(badge, level),
        rarity=share,
        progress=progress,
    )


def _locked(badge: BadgeDef, share: float, image_url: Callable[[BadgeDef, str], str]) -> LockedBadge:
    """A visible badge the member has not started on."""
    first_level = badge.levels[0].key if badge.levels else ""
    return LockedBadge(
        key=badge.key,
        name=badge.name,
        description=badge.description,
        category=badge.category,
        image=image_url(badge, first_level),
        criteria=narrative(badge),
        rarity=share,
    )


def build_shelf(
    member: str,
    *,
    badges: Iterable[BadgeDef],
    counts: Mapping[str, int],
    awards: Iterable[Award],
    rarity: Mapping[str, float],
    image_url: Callable[[BadgeDef, str], str],
    award_out: Callable[[Award], AwardOut],
) -> MemberBadges:
    """Assemble a member's shelf: earned (level, ×N, dates), in progress, and locked unless hidden.

    A badge with levels that is earned may also be in progress towards its next level. Revoked awards
    are left out: a badge whose only award was revoked is no longer earned.
    """
    by_badge: dict[str, list[Award]] = {}
    for award in sorted(awards, key=lambda a: (a.awarded_at, a.uid)):
        by_badge.setdefault(award.badge, []).append(award)
    shelf = MemberBadges(member=member, earned=[], in_progress=[], locked=[])
    for badge in badges:
        held = [a for a in by_badge.get(badge.key, []) if not a.revoked]
        count = counts.get(badge.key, 0)
        progress = (
            next_progress(badge, count=count, live_levels={a.level for a in held}) if (badge.active or held) else None
        )
        share = rarity.get(badge.key, 0.0)
        if held:
            shelf.earned.append(_earned(badge, held, progress, share, image_url, award_out))
            if progress is not None and badge.levels and badge.active:
                shelf.in_progress.append(_working_towards(badge, progress, share, image_url))
        elif badge.hidden or not badge.active:
            continue
        elif progress is not None and progress.current > 0:
            shelf.in_progress.append(_working_towards(badge, progress, share, image_url))
        else:
            shelf.locked.append(_locked(badge, share, image_url))
    return shelf


def initials(name: str) -> str:
    """Up to two capital letters from a badge name (``Streak master`` → ``SM``)."""
    words = [w for w in "".join(c if c.isalnum() else " " for c in name).split() if w]
    if not words:
        return "?"
    if len(words) == 1:
        return words[0][:2].upper()
    return (words[0][0] + words[1][0]).upper()
