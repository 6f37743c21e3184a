"""The webhook topic catalog: every topic Questline publishes, in one place, with an example of each.

A message's body is the Standard Webhooks envelope ``{"type": <topic>, "timestamp": <ISO 8601>, "data": {…}}``;
``data`` always names the member (``member``, the brand's external id) when there is one, and the event
that caused it (``event``) when an event did. An endpoint subscribes to topics by name, to ``*`` (all) or
to a family with a prefix wildcard (``badge.*``); an empty list also means all. A topic or wildcard that
names nothing here is refused (422 naming it), so a typo cannot silently receive nothing.

Some topics are *derived*: they mirror effects of every event (``points.awarded``, ``challenge.progressed``,
``rank.changed``, ``member.enrolled``), so they are written to the outbox only while an active endpoint of
the brand subscribes to them, and ``rank.changed`` at most once per member, board and
:data:`RANK_INTERVAL_SECONDS` (see :mod:`engine.publishing`). The others are always written (the console
lists them even when no endpoint listens).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import msgspec

from engine.errors import ValidationError

if TYPE_CHECKING:
    from datetime import datetime

    from engine.ids import BrandId

#: Default throttle of ``rank.changed``: at most one message per member, board (and scope) in this many seconds.
RANK_INTERVAL_SECONDS = 60.0


class Topic(msgspec.Struct, frozen=True, kw_only=True):
    """One topic of the catalog."""

    name: str
    summary: str
    example: dict[str, Any]
    """An example of the envelope's ``data``."""
    derived: bool = False
    """Written only while an endpoint listens (a mirror of a per-event effect)."""


_M = {"member": "m-42"}
_E = {"member": "m-42", "event": "ord-1001"}
_LOTS = [{"lot": 981, "points": 40, "expires_at": "2027-01-31T23:00:00+00:00"}]

TOPICS: tuple[Topic, ...] = (
    Topic(
        name="points.awarded",
        summary="Points posted to a member's ledger by an event (a rule, challenge, badge or referral) or by a "
        "manual adjustment (`source: adjustment`, with its `reason` and no `event`); negative for a correction.",
        example={**_E, "points": 50, "source": "rule", "key": "purchase", "multiplier": 1.0, "capped": False},
        derived=True,
    ),
    Topic(
        name="points.spent",
        summary="A member spent points on a reward.",
        example={**_M, "points": 500, "reward": "free-coffee", "redemption": "rdm_7Kq2"},
    ),
    Topic(
        name="points.expiring",
        summary="Some of a member's points reached an expiry reminder threshold.",
        example={**_M, "points": 40, "lots": _LOTS, "days_before": 7, "expires_at": "2027-01-31T23:00:00+00:00"},
    ),
    Topic(
        name="points.expired",
        summary="Some of a member's points expired.",
        example={**_M, "points": 40, "lots": _LOTS},
    ),
    Topic(
        name="challenge.progressed",
        summary="A challenge moved forward for a member.",
        example={**_E, "challenge": "coffee-week", "instance": "2026-W49", "progress": 3.0, "target": 5.0},
        derived=True,
    ),
    Topic(
        name="challenge.completed",
        summary="A member completed (an instance of) a challenge.",
        example={
            **_E,
            "challenge": "coffee-week",
            "campaign": "winter",
            "instance": "2026-W49",
            "completed_at": "2026-12-06T09:30:00+00:00",
            "points": 100,
            "badge": "regular",
        },
    ),
    Topic(
        name="badge.awarded",
        summary="A badge (or a level of it) was awarded to a member.",
        example={
            **_E,
            "badge": "regular",
            "name": "Regular",
            "level": "gold",
            "level_name": "Gold",
            "count": 1,
            "points": 20,
            "source": "rule",
            "award": "aw_5TzX",
            "assertion": "https://loyalty.example.com/ob/v2/assertions/aw_5TzX",
        },
    ),
    Topic(
        name="badge.revoked",
        summary="A badge award was revoked.",
        example={
            **_M,
            "badge": "regular",
            "level": "",
            "award": "aw_5TzX",
            "reason": "awarded by mistake",
            "assertion": "https://loyalty.example.com/ob/v2/assertions/aw_5TzX",
        },
    ),
    Topic(
        name="rank.changed",
        summary="A member's rank on a board after an event; at most one per member, board and scope per "
        "throttle interval (60 s by default).",
        example={
            **_E,
            "board": "monthly-spend",
            "period": "2026-12",
            "scope": "",
            "rank": 3,
            "score": 420.0,
            "total": 118,
        },
        derived=True,
    ),
    Topic(
        name="period.closed",
        summary="A board's period closed: its standings were archived and its rewards paid.",
        example={"board": "monthly-spend", "period": "2026-11", "members": 118, "scopes": [""]},
    ),
    Topic(
        name="tier.upgraded",
        summary="A member moved up to a higher tier.",
        example={**_M, "tier": "gold", "previous": "silver"},
    ),
    Topic(
        name="tier.downgraded",
        summary="A member moved down at a tier review (or when an override ended).",
        example={**_M, "tier": "silver", "previous": "gold"},
    ),
    Topic(
        name="tier.renewed",
        summary="A member kept their tier at a review.",
        example={**_M, "tier": "gold", "previous": "gold"},
    ),
    Topic(
        name="tier.overridden",
        summary="An admin set a member's tier by hand until a date.",
        example={
            **_M,
            "tier": "gold",
            "previous": "silver",
            "until": "2027-06-30T22:00:00+00:00",
            "reason": "goodwill",
        },
    ),
    Topic(
        name="tier.birthday_bonus",
        summary="A member's tier paid its birthday bonus.",
        example={**_M, "tier": "gold", "points": 200},
    ),
    Topic(
        name="tier.benefit_chosen",
        summary="A member chose one of their tier's benefits.",
        example={**_M, "tier": "gold", "reward": "lounge-pass"},
    ),
    Topic(
        name="reward.redeemed",
        summary="A member redeemed a reward (the points are spent, the code issued).",
        example={**_M, "redemption": "rdm_7Kq2", "reward": "free-coffee", "cost": 500, "code": "QL-4F7K-92XD"},
    ),
    Topic(
        name="reward.low_stock",
        summary="A reward's stock (or its pool of codes) fell to its low-stock threshold.",
        example={"reward": "free-coffee", "stock_left": 5},
    ),
    Topic(
        name="redemption.used",
        summary="An issued redemption was used (at the till).",
        example={**_M, "redemption": "rdm_7Kq2", "reward": "free-coffee"},
    ),
    Topic(
        name="redemption.cancelled",
        summary="An issued redemption was cancelled and its points refunded.",
        example={
            **_M,
            "redemption": "rdm_7Kq2",
            "reward": "free-coffee",
            "refunded": 500,
            "expired": 0,
            "settled_expired": 0,
        },
    ),
    Topic(
        name="referral.qualified",
        summary="A referred friend's event qualified the referral: the referrer earns its reward.",
        example={**_E, "referrer": "m-7", "friend": "m-42"},
    ),
    Topic(
        name="member.enrolled",
        summary="A member joined the program (the join page, or an event of type member.enrolled).",
        example={**_E, "event": "member.enrolled:m-42", "occurred_at": "2026-12-06T09:30:00+00:00"},
        derived=True,
    ),
    Topic(
        name="member.erased",
        summary="A member was erased (GDPR Art. 17): `member` is the pseudonym now in Questline, "
        "`external_id_sha256` the SHA-256 of the erased external id so you can erase it downstream.",
        example={
            "member": "erased-5f1c0a9e2b7d4c3a1f0e9d8c",
            "external_id_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "erased_at": "2026-12-06T09:30:00+00:00",
        },
    ),
    Topic(
        name="event.retracted",
        summary="An event was retracted (a refund, a deleted review): what it earned was undone.",
        example={
            **_E,
            "whole": False,
            "share": 0.5,
            "points": 50,
            "unrecovered": 0,
            "reason": "refund-77",
            "outcome": {"points": {"cancelled": 0, "clawed_back": 50, "unrecovered": 0}},
        },
    ),
    Topic(
        name="webhook.test",
        summary="A test message sent from the console or `POST /v1/webhooks/{id}/test` (to that endpoint only).",
        example={"endpoint": 3, "message": "Questline test event"},
    ),
)

CATALOG: dict[str, Topic] = {t.name: t for t in TOPICS}
DERIVED: frozenset[str] = frozenset(t.name for t in TOPICS if t.derived)


def matches(pattern: str, topic: str) -> bool:
    """Whether a subscription ``pattern`` (a topic, ``*`` or ``family.*``) covers ``topic``."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return topic.startswith(pattern[:-1])
    return pattern == topic


def subscribed(topics: list[str], topic: str) -> bool:
    """Whether an endpoint subscribed to ``topics`` receives ``topic`` (empty = all)."""
    return not topics or any(matches(p, topic) for p in topics)


def check_topics(topics: list[str], *, field: str = "$.topics") -> list[str]:
    """``topics`` without duplicates, each a catalog topic or a wildcard that matches one.

    Raises:
        ValidationError: an unknown topic, or a wildcard matching nothing (naming it and its index).
    """
    seen: list[str] = []
    for index, pattern in enumerate(topics):
        if not any(matches(pattern, name) for name in CATALOG):
            raise ValidationError(
                f"unknown webhook topic {pattern!r}: use a topic of the catalog (GET /schema: webhooks), "
                "'*' or a prefix wildcard such as 'badge.*'",
                field=f"{field}[{index}]",
            )
        if pattern not in seen:
            seen.append(pattern)
    return seen


def listened(topic_lists: list[list[str]]) -> frozenset[str]:
    """The catalog topics some endpoint (given by its subscription list) receives."""
    return frozenset(name for name in CATALOG if any(subscribed(topics, name) for topics in topic_lists))


def envelope(topic: str, data: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The Standard Webhooks body of a message."""
    return {"type": topic, "timestamp": now.isoformat(), "data": data}


def outbox_row(
    *, brand_id: BrandId, topic: str, data: dict[str, Any], now: datetime, throttle_key: str | None = None
) -> dict[str, Any]:
    """An outbox row for ``topic`` (Standard Webhooks envelope ``{type, timestamp, data}``)."""
    return {
        "brand_id": brand_id,
        "message_id": f"msg_{uuid.uuid4().hex}",
        "topic": topic,
        "payload": envelope(topic, data, now),
        "created_at": now,
        "attempts": 0,
        "next_attempt_at": now,
        "delivered_at": None,
        "last_error": "",
        "throttle_key": throttle_key,
    }
