"""Badge definitions, awards and the member's shelf, as frozen values. Pure; no I/O.

A badge is defined by the brand (:class:`BadgeSpec`, the wire and config form) and validated into a
:class:`BadgeDef` by :func:`build_badge`. A badge may carry a direct rule (an event filter and a count),
levels (bronze / silver / gold at growing counts of that rule), be repeatable (earned N times, shown as
×N) or hidden (secret until earned). Awards also come from challenges, leaderboard standings and manual
grants; every award is one row that the database keeps unique (see ``badges/orm.py``).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import msgspec

from badges.icons import ICONS
from badges.images import clean_image
from engine.errors import DefinitionError
from engine.events import EventType
from engine.predicates import Predicate, parse_predicate, predicate_to_data
from engine.texts import NO_TRANSLATIONS, LocaleTag, Translations, check_text, text_in, translations

BadgeKey = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")]
LevelKey = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[a-z0-9][a-z0-9_\-]*$")]
MAX_COUNT = 1_000_000_000
MAX_BONUS_POINTS = 1_000_000_000
MAX_LEVELS = 10
MAX_IMAGE_CHARS = 400_000
"""A base64 data URI of at most ~300 KB of image."""
COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")

SOURCES = ("rule", "challenge", "board", "manual", "tier")
"""What can award a badge."""


BadgeName = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
BadgeText = Annotated[str, msgspec.Meta(max_length=1000)]


class LevelSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One level of a badge: reached when the rule's count gets to ``threshold``."""

    key: LevelKey
    threshold: Annotated[int, msgspec.Meta(ge=1, le=MAX_COUNT)]
    name: Annotated[str, msgspec.Meta(max_length=100)] = ""
    """Shown to members; defaults to the key in title case (``gold`` → ``Gold``)."""
    points: Annotated[int, msgspec.Meta(ge=0, le=MAX_BONUS_POINTS)] = 0
    """Bonus points posted to the ledger when this level is awarded."""


class RuleSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A direct rule: events of ``event_type`` that match ``filter``, counted per member."""

    event_type: EventType
    filter: dict[str, Any] | None = None
    """A predicate of the shared language (``engine.predicates``); ``None`` counts every such event."""
    count: Annotated[int, msgspec.Meta(ge=1, le=MAX_COUNT)] = 1
    """Events needed for the badge (for each award of a repeatable badge); levels set their own."""


class BadgeSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """A badge as a brand writes it (API body and config document)."""

    key: BadgeKey
    name: BadgeName | dict[LocaleTag, BadgeName]
    """A plain string, or one per locale (``{en: Critic, it: Critico}``)."""
    description: BadgeText | dict[LocaleTag, BadgeText] = ""
    criteria: Annotated[str, msgspec.Meta(max_length=1000)] = ""
    """How to earn it, in words; generated from the rule and levels when empty."""
    category: Annotated[str, msgspec.Meta(max_length=64)] = ""
    image: Annotated[str, msgspec.Meta(max_length=MAX_IMAGE_CHARS)] = ""
    """An uploaded image as a ``data:image/svg+xml;base64,…`` or ``data:image/png;base64,…`` URI;
    generated art is used when empty."""
    icon: Annotated[str, msgspec.Meta(max_length=32)] = ""
    """A built-in icon of the generated art (``badges.art.ICONS``); the name's initials when empty."""
    color: Annotated[str, msgspec.Meta(max_length=7)] = ""
    """``#rrggbb`` of the generated art; the brand's colour when empty."""
    hidden: bool = False
    """Secret until earned: left out of the member's locked and in-progress lists."""
    repeatable: bool = False
    """Earned again and again (shown as ×N); excludes levels."""
    levels: list[LevelSpec] = []
    rule: RuleSpec | None = None
    points: Annotated[int, msgspec.Meta(ge=0, le=MAX_BONUS_POINTS)] = 0
    """Bonus points posted to the ledger on each award (levels carry their own)."""
    active: bool = True
    """An inactive badge is awarded by nothing; awards already made stay valid."""


class Level(msgspec.Struct, frozen=True, kw_only=True):
    """A validated level."""

    key: str
    name: str
    threshold: int
    points: int = 0


class DirectRule(msgspec.Struct, frozen=True, kw_only=True):
    """A validated direct rule, its filter compiled."""

    event_type: str
    filter: Predicate | None = None
    count: int = 1


class BadgeDef(msgspec.Struct, frozen=True, kw_only=True):
    """A validated badge definition."""

    key: str
    name: str
    description: str = ""
    criteria: str = ""
    category: str = ""
    image: str = ""
    """The uploaded image's data URI; only loaded where it is served (art, export), else empty."""
    has_image: bool = False
    """Whether an uploaded image exists (true even where :attr:`image` was not loaded)."""
    icon: str = ""
    color: str = ""
    hidden: bool = False
    repeatable: bool = False
    levels: tuple[Level, ...] = ()
    rule: DirectRule | None = None
    points: int = 0
    active: bool = True
    texts: Translations = NO_TRANSLATIONS
    """Name and description per locale, when given so (``name`` and ``description`` are the default's)."""

    def in_locale(self, locale: str | None) -> BadgeDef:
        """This badge with its name and description in ``locale`` (itself when they are plain strings)."""
        if not self.texts.fields:
            return self
        return msgspec.structs.replace(
            self,
            name=self.texts.text("name", locale, self.name),
            description=self.texts.text("description", locale, self.description),
        )

    def level(self, key: str) -> Level | None:
        """The level called ``key``, or ``None``."""
        return next((lv for lv in self.levels if lv.key == key), None)

    def level_index(self, key: str) -> int:
        """The position of level ``key`` (0 = lowest), or -1 for no level."""
        return next((i for i, lv in enumerate(self.levels) if lv.key == key), -1)


def _levels(spec: BadgeSpec, *, path: str) -> list[Level]:
    """The spec's levels, checked: at most :data:`MAX_LEVELS`, keys unique, thresholds growing."""
    if len(spec.levels) > MAX_LEVELS:
        raise DefinitionError(f"a badge has at most {MAX_LEVELS} levels", field=f"{path}.levels")
    levels: list[Level] = []
    seen: set[str] = set()
    previous = 0
    for index, level in enumerate(spec.levels):
        where = f"{path}.levels[{index}]"
        if level.key in seen:
            raise DefinitionError(f"level {level.key!r} appears twice", field=f"{where}.key")
        if level.threshold <= previous:
            raise DefinitionError("level thresholds must grow from one level to the next", field=f"{where}.threshold")
        seen.add(level.key)
        previous = level.threshold
        levels.append(
            Level(
                key=level.key,
                name=level.name or level.key.replace("-", " ").title(),
                threshold=level.threshold,
                points=level.points,
            )
        )
    return levels


def _check_levelled(spec: BadgeSpec, *, path: str) -> None:
    """What a badge with levels may not also have."""
    if spec.repeatable:
        raise DefinitionError("a badge is either repeatable or has levels, not both", field=f"{path}.repeatable")
    if spec.rule is None:
        raise DefinitionError("levels count against a `rule`: give one", field=f"{path}.rule")
    if spec.rule.count != 1:
        raise DefinitionError("with levels, each level's `threshold` replaces `rule.count`", field=f"{path}.rule.count")
    if spec.points:
        raise DefinitionError("with levels, give bonus `points` on each level", field=f"{path}.points")


def build_badge(spec: BadgeSpec, *, path: str = "badge") -> BadgeDef:
    """Validate a spec into a :class:`BadgeDef`.

    Raises:
        DefinitionError: with ``field`` set to the path of the mistake.
    """
    levels = _levels(spec, path=path)
    if levels:
        _check_levelled(spec, path=path)
    if spec.color and not COLOR.match(spec.color):
        raise DefinitionError("`color` is #rrggbb", field=f"{path}.color")
    image = clean_image(spec.image, path=f"{path}.image")[1] if spec.image else ""
    if spec.icon and spec.icon not in ICONS:
        raise DefinitionError(
            f"unknown icon {spec.icon!r}; use one of {', '.join(sorted(ICONS))}", field=f"{path}.icon"
        )
    rule = None
    if spec.rule is not None:
        compiled = (
            parse_predicate(spec.rule.filter, path=f"{path}.rule.filter") if spec.rule.filter is not None else None
        )
        rule = DirectRule(event_type=spec.rule.event_type, filter=compiled, count=spec.rule.count)
    check_text(spec.name, field=f"{path}.name", required=True)
    return BadgeDef(
        key=spec.key,
        name=text_in(spec.name),
        description=text_in(spec.description),
        texts=translations(name=spec.name, description=spec.description),
        criteria=spec.criteria,
        category=spec.category,
        image=image,
        has_image=bool(image),
        icon=spec.icon,
        color=spec.color.lower(),
        hidden=spec.hidden,
        repeatable=spec.repeatable,
        levels=tuple(levels),
        rule=rule,
        points=spec.points,
        active=spec.active,
    )


def badge_to_spec(badge: BadgeDef) -> BadgeSpec:
    """The plain form of a definition (the inverse of :func:`build_badge`)."""
    rule = None
    if badge.rule is not None:
        rule = RuleSpec(
            event_type=badge.rule.event_type,
            filter=predicate_to_data(badge.rule.filter) if badge.rule.filter is not None else None,
            count=badge.rule.count,
        )
    return BadgeSpec(
        key=badge.key,
        name=badge.texts.given("name", badge.name),
        description=badge.texts.given("description", badge.description),
        criteria=badge.criteria,
        category=badge.category,
        image=badge.image,
        icon=badge.icon,
        color=badge.color,
        hidden=badge.hidden,
        repeatable=badge.repeatable,
        levels=[LevelSpec(key=lv.key, name=lv.name, threshold=lv.threshold, points=lv.points) for lv in badge.levels],
        rule=rule,
        points=badge.points,
        active=badge.active,
    )


class Award(msgspec.Struct, frozen=True, kw_only=True):
    """One award of a badge (or of one level of it) to a member."""

    uid: str
    """The public id: hosted assertion URLs use it."""
    member_id: int
    badge: str
    level: str
    instance: str
    """Part of the unique key: empty for non-repeatable badges, the source instance for repeatables."""
    source: str
    source_ref: str
    reason: str
    points: int
    awarded_at: datetime
    revoked_at: datetime | None = None
    revocation_reason: str = ""
    recipient_type: str = "url"
    recipient_hash: str = ""
    salt: str = ""
    event: str | None = None

    @property
    def revoked(self) -> bool:
        """Whether the award was revoked."""
        return self.revoked_at is not None


class Holding(msgspec.Struct, kw_only=True):
    """What a member holds of one badge, as the award planner needs it (mutable while planning)."""

    levels: set[str] = msgspec.field(default_factory=set)
    """Levels with an award row, revoked or not (``""`` for a badge without levels): never re-awarded
    automatically."""
    live_levels: set[str] = msgspec.field(default_factory=set)
    live: int = 0
    """How many awards are not revoked (×N of a repeatable)."""


class Planned(msgspec.Struct, frozen=True, kw_only=True):
    """An award the planner wants to insert (the database decides whether it is new)."""

    level: str
    instance: str
    points: int


class Progress(msgspec.Struct, frozen=True, kw_only=True):
    """How far a member is towards the next award of a badge (or its next level)."""

    level: str
    """The level being worked towards (empty for a badge without levels)."""
    level_name: str
    current: int
    target: int
    percent: float


class AwardOut(msgspec.Struct, frozen=True, kw_only=True):
    """One award as the API shows it, with its public Open Badges links."""

    id: str
    level: str
    source: str
    reason: str
    points: int
    awarded_at: datetime
    revoked_at: datetime | None = None
    revocation_reason: str = ""
    assertion: str = ""
    """Hosted Open Badges 2.0 assertion (public)."""
    credential: str = ""
    """Open Badges 3.0 ``OpenBadgeCredential`` (public)."""
    baked_png: str = ""
    baked_svg: str = ""


class EarnedBadge(msgspec.Struct, frozen=True, kw_only=True):
    """A badge the member holds."""

    key: str
    name: str
    description: str
    category: str
    image: str
    level: str
    """The highest level held (empty for a badge without levels)."""
    level_name: str
    count: int
    """×N: how many live awards of a repeatable badge (1 otherwise)."""
    awarded_at: datetime
    """When it was first earned."""
    last_awarded_at: datetime
    rarity: float
    """Percent of the brand's members who hold it."""
    awards: list[AwardOut]
    next: Progress | None = None


class BadgeProgressOut(msgspec.Struct, frozen=True, kw_only=True):
    """A badge (or its next level) the member is working towards."""

    key: str
    name: str
    description: str
    category: str
    image: str
    criteria: str
    rarity: float
    progress: Progress


class LockedBadge(msgspec.Struct, frozen=True, kw_only=True):
    """A visible badge the member has not started on."""

    key: str
    name: str
    description: str
    category: str
    image: str
    criteria: str
    rarity: float


class MemberBadges(msgspec.Struct, frozen=True, kw_only=True):
    """A member's badge shelf."""

    member: str
    earned: list[EarnedBadge]
    in_progress: list[BadgeProgressOut]
    locked: list[LockedBadge]
