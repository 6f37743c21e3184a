"""Request and response bodies of the badges endpoints (definitions, grants, revocations)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from badges.models import AwardOut, LevelSpec, RuleSpec


class BadgeOut(msgspec.Struct, kw_only=True):
    """A badge definition with its art, Open Badges class and how many members hold it."""

    key: str
    name: str
    description: str
    criteria: str
    """The brand's text, or one generated from the rule and levels."""
    category: str
    icon: str
    color: str
    hidden: bool
    repeatable: bool
    levels: list[LevelSpec]
    rule: RuleSpec | None
    points: int
    active: bool
    uploaded_image: bool
    image: str
    """Public SVG URL (uploaded or generated art)."""
    image_png: str
    badge_class: str
    """Public Open Badges 2.0 BadgeClass URL."""
    holders: int
    rarity: float
    """Percent of the brand's members holding it."""


class GrantIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A manual grant."""

    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    level: Annotated[str, msgspec.Meta(max_length=32)] = ""
    """The level to grant (badges with levels); the lowest not yet awarded when empty."""
    ref: Annotated[str, msgspec.Meta(max_length=200)] = ""
    """Your reference for a grant of a repeatable badge: repeating a grant with the same ref adds nothing."""


class GrantOut(msgspec.Struct, kw_only=True):
    """What a grant did: ``awarded`` (new), ``reinstated`` (a revoked award made valid again), or neither (held)."""

    awarded: bool
    reinstated: bool
    award: AwardOut | None


class RevokeIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A revocation."""

    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    level: Annotated[str, msgspec.Meta(max_length=32)] = ""
    """Only this level (else every live award of the badge)."""
    award: Annotated[str, msgspec.Meta(max_length=32)] = ""
    """Only this award id."""


class RevokeOut(msgspec.Struct, kw_only=True):
    """The awards revoked."""

    revoked: list[AwardOut]
