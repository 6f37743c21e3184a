"""Rewards as values: catalog definitions, code sources, member limits, redemptions, errors. Pure; no I/O."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec

from engine.errors import Conflict, DefinitionError
from engine.events import AwareDatetime
from engine.predicates import Predicate, parse_predicate

RewardKey = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")]
Locale = Annotated[str, msgspec.Meta(min_length=2, max_length=16, pattern=r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
MAX_COST = 1_000_000_000
#: A code pattern: ``#`` a digit, ``X`` a letter or digit (no look-alikes), anything else literal.
PATTERN = re.compile(r"^[A-Z0-9#X\-_.]{6,64}$")
MIN_RANDOM = 6


class RewardType(StrEnum):
    """What the member gets."""

    VOUCHER = "voucher"
    DISCOUNT = "discount"
    PRODUCT = "product"
    EXPERIENCE = "experience"
    DONATION = "donation"


class Discount(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A fixed amount off (in ``currency``) or a percentage."""

    kind: Literal["fixed", "percent"]
    value: Annotated[float, msgspec.Meta(gt=0, le=1_000_000)]
    currency: Annotated[str, msgspec.Meta(max_length=3)] = ""


class Codes(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where a reward's codes come from: an imported ``pool``, or generated from a ``pattern`` at redemption."""

    source: Literal["pool", "pattern"] = "pool"
    pattern: Annotated[str, msgspec.Meta(max_length=64)] = ""
    low_stock_at: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] | None = None
    """Send ``reward.low_stock`` when the codes left in the pool fall to this number."""


class MemberLimit(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """At most ``count`` redemptions per member per period (in the brand's timezone)."""

    count: Annotated[int, msgspec.Meta(ge=1, le=10_000)]
    period: Literal["day", "week", "month", "year", "ever"] = "ever"


class RewardSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The wire and config form of a catalog entry (``eligibility`` still plain data)."""

    key: RewardKey
    name: dict[Locale, Annotated[str, msgspec.Meta(min_length=1, max_length=200)]]
    description: dict[Locale, Text] = {}
    image_url: Annotated[str, msgspec.Meta(max_length=2000, pattern=r"^(https?://\S+|/\S*)?$")] = ""
    cost: Annotated[int, msgspec.Meta(ge=1, le=MAX_COST)]
    type: RewardType
    discount: Discount | None = None
    codes: Codes | None = None
    stock: Annotated[int, msgspec.Meta(ge=0, le=100_000_000)] | None = None
    """Total that can ever be issued (cancelled redemptions give theirs back); ``None``: unlimited."""
    low_stock_at: Annotated[int, msgspec.Meta(ge=0, le=100_000_000)] | None = None
    """Send ``reward.low_stock`` when the stock left falls to this number."""
    limit: MemberLimit | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    eligibility: dict[str, Any] | None = None
    """A predicate over ``member.<attribute>`` (the filter language of earning rules)."""
    visible: bool = True
    paused: bool = False


class Reward(msgspec.Struct, frozen=True, kw_only=True):
    """A validated catalog entry."""

    spec: RewardSpec
    eligibility: Predicate | None = None

    @property
    def key(self) -> str:
        """The reward's key."""
        return self.spec.key


def build_reward(spec: RewardSpec, *, path: str = "$") -> Reward:
    """Validate a spec and compile its eligibility.

    Raises:
        DefinitionError: a rule between fields is broken (the field is named).
    """
    if not spec.name:
        raise DefinitionError("give a name in at least one locale", field=f"{path}.name")
    if (spec.type is RewardType.DISCOUNT) != (spec.discount is not None):
        raise DefinitionError("`discount` is given exactly for rewards of type discount", field=f"{path}.discount")
    if spec.discount is not None and spec.discount.kind == "percent" and spec.discount.value > 100:
        raise DefinitionError("a percentage is at most 100", field=f"{path}.discount.value")
    if spec.type is RewardType.VOUCHER and spec.codes is None:
        raise DefinitionError("a voucher needs `codes` (a pool or a pattern)", field=f"{path}.codes")
    if spec.codes is not None and spec.codes.source == "pattern":
        pattern = spec.codes.pattern
        if not PATTERN.match(pattern) or pattern.count("#") + pattern.count("X") < MIN_RANDOM:
            raise DefinitionError(
                f"a code pattern uses A-Z 0-9 - _ . and at least {MIN_RANDOM} random places (# or X)",
                field=f"{path}.codes.pattern",
            )
    if spec.starts_at is not None and spec.ends_at is not None and spec.ends_at <= spec.starts_at:
        raise DefinitionError("`ends_at` must come after `starts_at`", field=f"{path}.ends_at")
    eligibility = None
    if spec.eligibility is not None:
        eligibility = parse_predicate(spec.eligibility, path=f"{path}.eligibility")
    return Reward(spec=spec, eligibility=eligibility)


class RedemptionStatus(StrEnum):
    """Where a redemption stands."""

    ISSUED = "issued"
    USED = "used"
    CANCELLED = "cancelled"


class Redemption(msgspec.Struct, frozen=True, kw_only=True):
    """A member's redemption of a reward, with what it cost then."""

    id: str
    reward: str
    member: str
    name: dict[str, str]
    """The reward's name when redeemed."""
    cost: int
    code: str | None
    status: RedemptionStatus
    issued_at: datetime
    used_at: datetime | None = None
    cancelled_at: datetime | None = None
    refund: Literal["", "refunded", "expired", "partly_expired"] = ""
    """On cancel: points came back as lots keeping their dates; ``expired`` (or ``partly_expired``) if those dates had passed."""


class CatalogEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A reward as one member sees it: can they redeem it now, and how many points are missing."""

    reward: RewardSpec
    remaining: int | None
    """Stock left (``None``: unlimited)."""
    affordable: bool
    missing_points: int
    redeemable: bool
    reason: str = ""
    """Why it cannot be redeemed now: ``paused``, ``not_started``, ``ended``, ``ineligible``, ``limit``, ``out_of_stock``, ``points``."""


class CodePoolStatus(msgspec.Struct, frozen=True, kw_only=True):
    """A reward's code pool after an import."""

    added: int
    duplicates: int
    available: int


class NotRedeemable(Conflict):
    """The reward cannot be redeemed now (paused, outside its window, not for this member)."""

    title = "Reward not redeemable"
    slug = "reward-not-redeemable"


class OutOfStock(Conflict):
    """No stock (or no code) is left for the reward."""

    title = "Out of stock"
    slug = "out-of-stock"


class LimitReached(Conflict):
    """The member already redeemed the reward as often as the period allows."""

    title = "Redemption limit reached"
    slug = "redemption-limit-reached"


class RedemptionState(Conflict):
    """The redemption is not in a state that allows this (e.g. cancelling a used one)."""

    title = "Redemption state conflict"
    slug = "redemption-state"
