"""The pipeline step of the ``badges`` package: direct rules and challenge rewards → awards.

Per unit of work: read the brand's definitions (cached by config version), find the events that count
towards a direct rule and the ``ChallengeCompleted`` effects that name a badge; if any, load the
members' counters and holdings in one query each, plan the awards with the pure functions of
``badges.criteria``, insert them with ``ON CONFLICT DO NOTHING`` and emit effects only for the rows the
database reports inserted. The pipeline then posts bonus points to the ledger and ``badge.awarded`` to
the outbox.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import msgspec

from badges import repository as repo
from badges.criteria import external_award, instance_key, rule_awards, rule_matches
from badges.models import Award, BadgeDef, Holding, Planned
from badges.openbadges import Urls, recipient_identity
from badges.service import award_effects, award_row, row_to_award
from engine.effects import ChallengeCompleted
from engine.tenants import config_version

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId, MemberId
    from engine.pipeline import EventContext, UnitOfWork

log = logging.getLogger(__name__)


class Catalog(msgspec.Struct, frozen=True, kw_only=True):
    """A brand's badges, indexed for the pipeline."""

    by_key: dict[str, BadgeDef]
    by_event_type: dict[str, tuple[BadgeDef, ...]]
    """Active badges with a direct rule, by the rule's event type."""


def catalog_of(badges: list[BadgeDef]) -> Catalog:
    """Index definitions for fast per-event lookup."""
    by_type: dict[str, list[BadgeDef]] = {}
    for badge in badges:
        if badge.rule is not None and badge.active:
            by_type.setdefault(badge.rule.event_type, []).append(badge)
    return Catalog(by_key={b.key: b for b in badges}, by_event_type={k: tuple(v) for k, v in by_type.items()})


class DefinitionCache:
    """Per-brand badge definitions, reloaded when the brand's config version moves."""

    def __init__(self) -> None:
        self._entries: dict[BrandId, tuple[int, Catalog]] = {}

    async def catalog(self, session: AsyncSession, brand_id: BrandId, version: int | None = None) -> Catalog:
        """The brand's badges as of this transaction (``version``: the unit of work's config version, if known)."""
        if version is None:
            version = await config_version(session, brand_id)
        hit = self._entries.get(brand_id)
        if hit is not None and hit[0] == version:
            return hit[1]
        catalog = catalog_of(await repo.load_badges(session, brand_id))
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[brand_id] = (version, catalog)
        return catalog


class _Candidate(msgspec.Struct, kw_only=True):
    ctx: Any
    badge: BadgeDef
    row: dict[str, Any]


class BadgesProcessor:
    """Awards badges for direct rules and completed challenges, exactly once."""

    name = "badges"

    def __init__(self, *, public_url: str) -> None:
        self.cache = DefinitionCache()
        self.urls = Urls(public_url)

    async def process(self, uow: UnitOfWork) -> None:
        """Count rule events, plan due awards, insert them once, emit effects for the inserted ones."""
        catalog = await self.cache.catalog(uow.session, uow.brand.id, await uow.config_version())
        if not catalog.by_key:
            return
        rule_hits: list[tuple[EventContext, BadgeDef]] = []
        challenge_hits: list[tuple[EventContext, BadgeDef, ChallengeCompleted]] = []
        for ctx in uow.events:
            event = ctx.event
            for badge in catalog.by_event_type.get(event.type, ()):
                if rule_matches(badge, event_type=event.type, properties=event.properties, member=ctx.member):
                    rule_hits.append((ctx, badge))
            for effect in ctx.effects:
                if isinstance(effect, ChallengeCompleted) and effect.badge:
                    badge_def = catalog.by_key.get(effect.badge)
                    if badge_def is None or not badge_def.active:
                        log.warning(
                            "challenge %s of brand %s rewards badge %r, which is %s",
                            effect.challenge,
                            uow.brand.slug,
                            effect.badge,
                            "unknown" if badge_def is None else "inactive",
                        )
                        continue
                    challenge_hits.append((ctx, badge_def, effect))
        if not rule_hits and not challenge_hits:
            return
        await self._award(uow, rule_hits, challenge_hits)

    async def _award(
        self,
        uow: UnitOfWork,
        rule_hits: list[tuple[EventContext, BadgeDef]],
        challenge_hits: list[tuple[EventContext, BadgeDef, ChallengeCompleted]],
    ) -> None:
        session, brand = uow.session, uow.brand
        member_ids = {ctx.member_id for ctx, _ in rule_hits} | {ctx.member_id for ctx, _, _ in challenge_hits}
        rule_keys = {badge.key for _, badge in rule_hits}
        keys = rule_keys | {badge.key for _, badge, _ in challenge_hits}
        counts = await repo.load_counts(session, brand_id=brand.id, member_ids=member_ids, keys=rule_keys)
        holdings = await repo.load_holdings(session, brand_id=brand.id, member_ids=member_ids, keys=keys)
        changed: dict[tuple[MemberId, str], int] = {}
        candidates = self._plan(uow, rule_hits, challenge_hits, counts=counts, holdings=holdings, changed=changed)
        inserted = await repo.insert_awards(session, brand, [c.row for c in candidates])
        await repo.save_counts(session, brand_id=brand.id, counts=changed, now=uow.now)
        for candidate in candidates:
            if candidate.row["uid"] not in inserted:
                continue
            ctx = candidate.ctx
            holding = holdings[(ctx.member_id, candidate.badge.key)]
            holding.live += 1
            award: Award = row_to_award(candidate.row)
            count = holding.live if candidate.badge.repeatable else 1
            for awarded in award_effects(candidate.badge, award, count=count, urls=self.urls):
                ctx.emit(awarded)

    def _plan(
        self,
        uow: UnitOfWork,
        rule_hits: list[tuple[EventContext, BadgeDef]],
        challenge_hits: list[tuple[EventContext, BadgeDef, ChallengeCompleted]],
        *,
        counts: dict[tuple[MemberId, str], int],
        holdings: dict[tuple[MemberId, str], Holding],
        changed: dict[tuple[MemberId, str], int],
    ) -> list[_Candidate]:
        """The awards the hits may give, in request order so a member's awards follow their events.

        Rule counts move by one per hit (``counts`` and ``changed`` are updated).
        """
        by_ctx_rules: dict[int, list[BadgeDef]] = {}
        for ctx, badge in rule_hits:
            by_ctx_rules.setdefault(id(ctx), []).append(badge)
        by_ctx_challenges: dict[int, list[tuple[BadgeDef, ChallengeCompleted]]] = {}
        for ctx, badge, effect in challenge_hits:
            by_ctx_challenges.setdefault(id(ctx), []).append((badge, effect))
        candidates: list[_Candidate] = []
        for ctx in uow.events:
            for badge in by_ctx_rules.get(id(ctx), []):
                candidates += self._rule_candidates(uow, ctx, badge, counts=counts, holdings=holdings, changed=changed)
            for badge, effect in by_ctx_challenges.get(id(ctx), []):
                candidate = self._challenge_candidate(uow, ctx, badge, effect, holdings=holdings)
                if candidate is not None:
                    candidates.append(candidate)
        return candidates

    def _rule_candidates(
        self,
        uow: UnitOfWork,
        ctx: EventContext,
        badge: BadgeDef,
        *,
        counts: dict[tuple[MemberId, str], int],
        holdings: dict[tuple[MemberId, str], Holding],
        changed: dict[tuple[MemberId, str], int],
    ) -> list[_Candidate]:
        slot = (ctx.member_id, badge.key)
        before = counts.get(slot, 0)
        counts[slot] = changed[slot] = before + 1
        holding = holdings.setdefault(slot, Holding())
        assert badge.rule is not None
        reason = f"{before + 1} {badge.rule.event_type} event{'s' if before else ''}"
        return [
            self._candidate(uow, ctx, badge, plan, source="rule", source_ref=plan.instance, reason=reason)
            for plan in rule_awards(badge, before=before, after=before + 1, holding=holding)
        ]

    def _challenge_candidate(
        self,
        uow: UnitOfWork,
        ctx: EventContext,
        badge: BadgeDef,
        effect: ChallengeCompleted,
        *,
        holdings: dict[tuple[MemberId, str], Holding],
    ) -> _Candidate | None:
        holding = holdings.setdefault((ctx.member_id, badge.key), Holding())
        instance = instance_key("challenge", f"{effect.challenge}:{effect.instance or ctx.event.id}")
        planned = external_award(badge, holding=holding, instance=instance)
        if planned is None:
            return None
        return self._candidate(
            uow,
            ctx,
            badge,
            planned,
            source="challenge",
            source_ref=instance,
            reason=f"completed challenge {effect.challenge}",
            at=effect.completed_at if effect.completed_at and effect.completed_at.tzinfo else None,
        )

    def _candidate(
        self,
        uow: UnitOfWork,
        ctx: EventContext,
        badge: BadgeDef,
        plan: Planned,
        *,
        source: str,
        source_ref: str,
        reason: str,
        at: datetime | None = None,
    ) -> _Candidate:
        recipient = recipient_identity(
            attributes=ctx.member, fallback=lambda: self.urls.recipient(uow.brand.slug, ctx.event.member)
        )
        row = award_row(
            brand_id=uow.brand.id,
            member_id=ctx.member_id,
            badge_key=badge.key,
            plan=plan,
            source=source,
            source_ref=source_ref,
            reason=reason,
            awarded_at=min(at or ctx.event.occurred_at, uow.now),
            recipient=recipient,
            event_key=ctx.event.id,
        )
        return _Candidate(ctx=ctx, badge=badge, row=row)

    async def after_commit(self, uow: UnitOfWork) -> None:
        """Nothing derived to update: awards are SQL rows."""
