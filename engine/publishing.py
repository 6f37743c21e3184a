"""Publishing the per-event effects as webhook topics, and the outbox step of the pipeline.

Domains emit :class:`engine.effects.Notification` effects for the topics they own (``challenge.completed``,
``badge.awarded``…), which the pipeline always writes to the outbox. The effects every event causes are
mirrored here as *derived* topics (:data:`engine.topics.DERIVED`), written only while an active endpoint of
the brand subscribes to them, so a brand that listens to none pays nothing for them:

- ``points.awarded`` for each :class:`~engine.effects.PointsAwarded` (as posted: a debit capped by the
  balance is reported as taken) and for each manual adjustment (:func:`publish_adjustment`), ``challenge.progressed`` for each :class:`~engine.effects.ProgressAdvanced`
  and ``member.enrolled`` for an event of that type: written in the event's own transaction
  (:func:`derived_rows`, called by the pipeline);
- ``rank.changed`` for each :class:`~engine.effects.RankChanged`: ranks are known only once the boards are
  updated after the commit, so these are written then, in a short transaction of their own (a crash in
  between loses them, as it loses the live update), and *throttled*: at most one message per member, board
  and scope per interval (``Settings.webhook_rank_interval_seconds``, 60 s by default). Within an interval
  the first change is sent and the later ones dropped; the next change after it carries the then-current
  rank. :class:`~engine.effects.BoardTotalChanged` is not a topic of its own: its score is in
  ``rank.changed``.

Which topics a brand listens to is cached per process and keyed on the brand's configuration version,
which every endpoint change bumps (:mod:`engine.webhooks`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select

from engine import topics
from engine.cache import BrandCache
from engine.effects import Notification, PointsAwarded, ProgressAdvanced, RankChanged
from engine.orm import MemberRow, OutboxRow, WebhookEndpointRow

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.db import Database
    from engine.ids import BrandId
    from engine.outbox import OutboxDeliverer

_LISTENED: BrandCache[frozenset[str]] = BrandCache()
_STASH = "publishing.listened"
_DERIVED = "publishing.derived"
"""How many derived-topic rows the unit wrote to the outbox (the deliverer is woken only for rows)."""
ENROLLED = "member.enrolled"


async def listened(session: AsyncSession, brand_id: BrandId) -> frozenset[str]:
    """The catalog topics at least one active endpoint of the brand subscribes to (uncached)."""
    rows = await session.scalars(
        select(WebhookEndpointRow.topics).where(
            WebhookEndpointRow.brand_id == brand_id, WebhookEndpointRow.active.is_(True)
        )
    )
    return topics.listened([list(t or []) for t in rows])


async def _listened(uow: Any) -> frozenset[str]:
    found: frozenset[str] | None = uow.stash.get(_STASH)
    if found is None:
        version = await uow.config_version()
        found = await _LISTENED.get(uow.brand.id, version, lambda: listened(uow.session, uow.brand.id))
        uow.stash[_STASH] = found
    return found


def _derived(ctx: Any, wanted: frozenset[str]) -> list[tuple[str, dict[str, Any]]]:
    """The in-transaction derived topics of one event in ``wanted``, with their data (without member and event)."""
    found: list[tuple[str, dict[str, Any]]] = []
    if ctx.event.type == ENROLLED and ENROLLED in wanted:
        found.append((ENROLLED, {"occurred_at": ctx.event.occurred_at.isoformat()}))
    points, progress = "points.awarded" in wanted, "challenge.progressed" in wanted
    for effect in ctx.effects:
        if points and isinstance(effect, PointsAwarded) and effect.points:
            found.append(
                ("points.awarded", {"points": effect.points, "source": effect.source, "key": effect.key,
                                    "multiplier": effect.multiplier, "capped": effect.capped})
            )  # fmt: skip
        elif progress and isinstance(effect, ProgressAdvanced):
            found.append(
                ("challenge.progressed", {"challenge": effect.challenge, "instance": effect.instance,
                                          "progress": effect.progress, "target": effect.target})
            )  # fmt: skip
    return found


async def derived_rows(uow: Any) -> list[dict[str, Any]]:
    """Outbox rows of the derived topics of the unit's events that an endpoint listens to.

    What the brand listens to is known first (cached per configuration version), so a brand that listens to
    no derived topic costs one set test per unit, not a look at every effect.
    """
    wanted = await _listened(uow) & topics.DERIVED
    if not wanted:
        return []
    rows = [
        topics.outbox_row(
            brand_id=uow.brand.id,
            topic=topic,
            data={"member": ctx.event.member, "event": ctx.event.id, **data},
            now=uow.now,
        )
        for ctx in uow.events
        for topic, data in _derived(ctx, wanted)
    ]
    uow.stash[_DERIVED] = len(rows)
    return rows


async def publish(session: AsyncSession, *, brand_id: BrandId, topic: str, data: dict[str, Any], now: datetime) -> None:
    """Write one message of a catalog topic to the outbox, in the caller's transaction."""
    if topic not in topics.CATALOG:
        raise ValueError(f"{topic!r} is not in the webhook topic catalog")
    await session.execute(insert(OutboxRow), [topics.outbox_row(brand_id=brand_id, topic=topic, data=data, now=now)])


async def publish_adjustment(
    session: AsyncSession, *, brand_id: BrandId, member_id: int, points: int, key: str, reason: str, now: datetime
) -> bool:
    """``points.awarded`` for a manual adjustment (no event carries it), if an endpoint listens; returns whether."""
    if "points.awarded" not in await listened(session, brand_id):
        return False
    member = await session.scalar(select(MemberRow.external_id).where(MemberRow.id == member_id))
    data = {"member": member, "points": points, "source": "adjustment", "key": key, "multiplier": 1.0,
            "capped": False, "reason": reason}  # fmt: skip
    await publish(session, brand_id=brand_id, topic="points.awarded", data=data, now=now)
    return True


async def publish_ranks(db: Database, uow: Any, *, interval: timedelta) -> int:
    """Write the unit's ``rank.changed`` messages, throttled per member, board and scope; returns how many."""
    latest: dict[str, dict[str, Any]] = {}
    for ctx in uow.events:
        for effect in ctx.effects:
            if isinstance(effect, RankChanged):
                key = f"{ctx.member_id}:{effect.board}:{effect.scope}"  # ids, not names: erasure leaves no trace
                latest[key] = {
                    "member": ctx.event.member, "event": ctx.event.id, "board": effect.board,
                    "period": effect.period, "scope": effect.scope, "rank": effect.rank, "score": effect.score,
                    "total": effect.total,
                }  # fmt: skip
    if not latest or "rank.changed" not in uow.stash.get(_STASH, frozenset()):
        return 0
    now = uow.now
    async with db.write() as session:
        recent = set(
            await session.scalars(
                select(OutboxRow.throttle_key).where(
                    OutboxRow.brand_id == uow.brand.id,
                    OutboxRow.throttle_key.in_(latest),
                    OutboxRow.created_at > now - interval,
                )
            )
        )
        rows = [
            topics.outbox_row(brand_id=uow.brand.id, topic="rank.changed", data=data, now=now, throttle_key=key)
            for key, data in latest.items()
            if key not in recent
        ]
        if rows:
            await session.execute(insert(OutboxRow), rows)
    return len(rows)


class OutboxProcessor:
    """Pipeline step: reads which topics the brand listens to, publishes ranks, wakes the deliverer."""

    name = "outbox"

    def __init__(
        self, deliverer: OutboxDeliverer | None, *, rank_interval: float = topics.RANK_INTERVAL_SECONDS
    ) -> None:
        self.deliverer = deliverer
        self.rank_interval = timedelta(seconds=rank_interval)

    async def process(self, uow: Any) -> None:
        """Learn (cached) which topics anyone listens to, for the derived rows and the ranks after commit."""
        if uow.events:
            await _listened(uow)

    async def after_commit(self, uow: Any) -> None:
        """Write the throttled ``rank.changed`` messages, then wake the deliverer if anything was written."""
        ranks = 0
        if self.deliverer is not None:
            ranks = await publish_ranks(self.deliverer.db, uow, interval=self.rank_interval)
        # Points and progress become outbox rows only for the topics an endpoint listens to: without one
        # there is nothing to deliver, and waking the deliverer cost a round of statements per commit.
        wrote = (
            ranks
            or uow.stash.get(_DERIVED, 0) > 0
            or any(isinstance(e, Notification) for c in uow.events for e in c.effects)
        )
        if self.deliverer is not None and wrote:
            self.deliverer.notify()
