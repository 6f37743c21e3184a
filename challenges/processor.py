"""The pipeline step that moves challenges forward: load → :mod:`challenges.rules` → save → effects.

Per unit of work it runs a fixed number of queries whatever the batch size: none for definitions (a
:class:`engine.cache.BrandCache` keyed by the unit of work's config version, read once for every
processor), opt-ins for opt-in campaigns, the state rows of the members the
batch touches (one row per member holds every challenge), the earlier events ``first`` challenges need,
one bulk upsert of the changed states and one insert of the completions. Members are locked by the
pipeline, so two requests for one member are applied one after the other and no update is lost.

It runs once per event and live challenge, so it does no more than it must: a member's progress on a
challenge is decoded only when one of their events looks at it (the rest is written back as it was
read), and outcomes are computed without the human explanations only the explain view shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from challenges.codec import EncodedState, decode_encoded_state, decode_instances, encode_state_parts
from challenges.completions import Completion, record_completions_with_unit
from challenges.definitions import load_compiled
from challenges.enrolments import enrolments
from challenges.models import Challenge, First, Progress, Reason, Streak, rule_matches
from challenges.prefold import PREFOLD_STASH, Fold, Prefold, keep_prefolded, lookup_prior, record
from challenges.rules import apply_event, is_unlocked, prune_instances, retention, screen
from challenges.states import load_state_texts, save_states_with_unit
from engine.cache import BrandCache
from engine.metrics import PREFOLDED_EVENTS
from engine.periods import instance_of
from engine.predicates import Predicate, member_keys
from engine.predicates import matches as predicate_matches

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    import msgspec
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import BrandId, MemberId
    from engine.pipeline import Draft, EventContext, UnitOfWork
    from engine.tenants import Brand


@dataclass(frozen=True, slots=True)
class Plan:
    """How the pipeline screens events of one type for one live challenge, decided once per program version.

    Most challenges have no window, eligibility rule, opt-in or lateness limit: for them the only check
    that needs no progress is the rule's filter, and :func:`challenges.rules.screen` (which gives every
    other reason too) is called only for the rest, or for an event late enough to reach a recurring
    challenge's retention.
    """

    challenge: Challenge
    filters: tuple[Predicate, ...] | None
    """The filters of the rule's patterns for this event type; ``None`` when one of them has none."""
    direct: bool
    """Whether the filter is the only stateless check (see above)."""
    unconditional: bool
    """Direct and without a filter: an event of the type passes unless it is late enough for the retention."""
    retention: timedelta | None
    """For a recurring challenge, how late an event may be before the full screen must look at it."""
    first: bool
    settled_at: int | None
    """Completions after which no event can change the member's progress (the cap; ``None`` for a streak,
    whose figures move after completion too, and for an uncapped recurring challenge)."""
    gated: bool = False
    """Whether the challenge requires other challenges completed first (see :func:`is_unlocked`)."""

    @classmethod
    def of(cls, challenge: Challenge, event_type: str) -> Plan:
        """The plan for ``challenge`` and the events of ``event_type``."""
        patterns = [m for m in challenge.patterns or rule_matches(challenge.rule) if m.event_type == event_type]
        filters = None if any(m.filter is None for m in patterns) else tuple(m.filter for m in patterns if m.filter)
        campaign = challenge.campaign
        direct = (
            campaign.starts_at is None
            and campaign.ends_at is None
            and campaign.eligibility is None
            and not campaign.opt_in
            and challenge.max_lateness is None
            and challenge.requires.member is None
        )
        return cls(
            challenge=challenge,
            filters=filters,
            direct=direct,
            unconditional=direct and filters is None,
            retention=None if challenge.recurrence == "none" else retention(challenge),
            first=isinstance(challenge.rule, First),
            settled_at=None if isinstance(challenge.rule, Streak) else challenge.cap,
            gated=bool(challenge.requires.challenges),
        )


@dataclass(frozen=True, slots=True)
class ActiveProgram:
    """A brand's live challenges (draft, paused and archived ones left out), indexed by event type."""

    challenges: tuple[Challenge, ...]
    by_type: dict[str, tuple[Plan, ...]] = field(default_factory=dict)
    opt_in: frozenset[int] = frozenset()
    """Ids of the campaigns that need an opt-in."""
    recurring: dict[str, Challenge] = field(default_factory=dict)
    """The recurring challenges by key (their old instances are pruned)."""
    member_keys: tuple[str, ...] = ()
    """The keys of the member view any of the challenges' predicates reads (filters, eligibility, requirements):
    all the fold sees of a member's view (:func:`view_key`)."""

    @classmethod
    def of(cls, challenges: list[Challenge]) -> ActiveProgram:
        """Index the challenges whose campaign is live by the event types their rules look at."""
        live = tuple(c for c in challenges if c.campaign.status == "live")
        by_type: dict[str, list[Plan]] = {}
        for challenge in live:
            for event_type in dict.fromkeys(m.event_type for m in rule_matches(challenge.rule)):
                by_type.setdefault(event_type, []).append(Plan.of(challenge, event_type))
        return cls(
            challenges=live,
            by_type={k: tuple(v) for k, v in by_type.items()},
            opt_in=frozenset(c.campaign.id for c in live if c.campaign.opt_in),
            recurring={c.key: c for c in live if c.recurrence != "none"},
            member_keys=tuple(sorted(set().union(*(_member_keys(c) for c in live)))),
        )


def _member_keys(challenge: Challenge) -> set[str]:
    """The keys of the member view the challenge's predicates read."""
    patterns = challenge.patterns or rule_matches(challenge.rule)
    return set().union(
        *(member_keys(m.filter) for m in patterns),
        member_keys(challenge.campaign.eligibility),
        member_keys(challenge.requires.member),
    )


def _passes(
    plan: Plan,
    ctx: EventContext,
    *,
    now: datetime,
    tz: ZoneInfo,
    opted: Mapping[tuple[int, MemberId], datetime],
) -> bool:
    """Whether the event passes every check of the plan's challenge that needs no progress."""
    event = ctx.event
    if plan.direct and (plan.retention is None or now - event.occurred_at < plan.retention):
        return plan.filters is None or any(
            predicate_matches(f, event_type=event.type, properties=event.properties, member=ctx.member)
            for f in plan.filters
        )
    campaign = plan.challenge.campaign
    opted_in_at = opted.get((campaign.id, ctx.member_id)) if campaign.opt_in else None
    return screen(plan.challenge, event, tz=tz, member=ctx.member, received_at=now, opted_in_at=opted_in_at) is None


@dataclass(slots=True)
class _Member:
    """A member's state being worked on: a challenge's instances are decoded when first needed."""

    stored: dict[str, msgspec.Raw]
    """Each challenge's instances as loaded, still encoded (never changed: see :meth:`encoded`)."""
    completions: dict[str, int]
    decoded: dict[str, dict[str, Progress]] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    """Challenges whose instances this unit of work changed (re-encoded when saved)."""

    @classmethod
    def of(cls, state: EncodedState | None) -> _Member:
        if state is None:
            return cls(stored={}, completions={})
        return cls(stored=state.progress, completions=dict(state.completions))

    def has(self, key: str) -> bool:
        """Whether the member has stored progress on the challenge."""
        return key in self.stored or bool(self.decoded.get(key))

    def instances(self, key: str) -> dict[str, Progress]:
        """The challenge's instances, as a map this unit of work may change (add the key to :attr:`changed`)."""
        found = self.decoded.get(key)
        if found is None:
            raw = self.stored.get(key)
            found = self.decoded[key] = {} if raw is None else decode_instances(raw)
        return found

    def encoded(self) -> str:
        """The state to store, in one encoding: changed challenges afresh, the others as they were loaded."""
        progress: dict[str, msgspec.Raw | dict[str, Progress]] = dict(self.stored)
        for key in self.changed:
            instances = self.decoded[key]
            if instances:
                progress[key] = instances
            else:
                progress.pop(key, None)
        return encode_state_parts(progress, self.completions)


class ChallengeProcessor:
    """Evaluates every new event against the brand's live challenges.

    A large unit's events are folded first outside the members' locks (:meth:`prefold`, through
    ``engine.pipeline.Prefolds``), from the states, opt-ins and earlier events a read without the locks finds.
    Under the locks :meth:`process` reads them again and keeps that fold for each member whose inputs are
    the same; the others are folded again. The fold is a pure function of those inputs, so the outcome is
    the one folding everything under the locks gives, while the locks are held for a comparison.
    """

    name = "challenges"

    def __init__(self, cache: BrandCache[ActiveProgram] | None = None) -> None:
        self.cache: BrandCache[ActiveProgram] = cache or BrandCache()

    async def _program(self, session: AsyncSession, brand: Brand, version: int) -> ActiveProgram:
        """The brand's live challenges at ``version`` (compiled again when the version or timezone moves)."""

        async def load() -> ActiveProgram:
            return ActiveProgram.of(await load_compiled(session, brand_id=brand.id, tz=brand.tz))

        return await self.cache.get(brand.id, (version, brand.timezone), load)

    async def prefold(self, draft: Draft) -> None:
        """Fold the draft's events from a read without the locks; leave each member's inputs and outcome."""
        brand = draft.brand
        async with draft.db.read() as session:
            program = await self._program(session, brand, draft.version)
            if not any(event.type in program.by_type for _, event in draft.events):
                return  # nothing to fold: no read of the members
            contexts = await draft.contexts(session)
            touched = [(ctx, found) for ctx in contexts if (found := program.by_type.get(ctx.event.type))]
            stored = {ctx.member_id for ctx, _ in touched if ctx.member_id > 0}  # not the members to create
            opted = await enrolments(
                session, brand_id=brand.id, campaign_ids=set(program.opt_in),
                member_ids=stored if program.opt_in else set(),
            )  # fmt: skip
            texts = await load_state_texts(session, brand_id=brand.id, member_ids=stored)
            fold = Fold()
            await _fold(session, brand_id=brand.id, program=program, touched=touched, texts=texts, opted=opted,
                        now=draft.now, tz=brand.tz, fold=fold)  # fmt: skip
        draft.stash[PREFOLD_STASH] = record(draft.version, program.member_keys, touched, texts, opted, fold)

    async def process(self, uow: UnitOfWork) -> None:
        """Advance progress for the unit's events, in order, and emit progress, completion and reward effects."""
        version = await uow.config_version()
        program = await self._program(uow.session, uow.brand, version)
        prefolded = uow.stash.pop(PREFOLD_STASH, None)
        if not program.by_type:
            return
        by_type = program.by_type
        touched = [(ctx, found) for ctx in uow.events if (found := by_type.get(ctx.event.type))]
        if not touched:
            return
        session, brand_id, tz, now = uow.session, uow.brand.id, uow.tz, uow.now
        member_ids = {ctx.member_id for ctx, _ in touched}
        opted = await enrolments(
            session,
            brand_id=brand_id,
            campaign_ids=set(program.opt_in),
            member_ids=member_ids if program.opt_in else set(),
        )
        texts = await load_state_texts(session, brand_id=brand_id, member_ids=member_ids)
        fold = Fold()
        if isinstance(prefolded, Prefold) and prefolded.version == version:
            looked_at = len(touched)
            touched = await keep_prefolded(
                session, brand_id=brand_id, program=program, prefolded=prefolded, touched=touched, texts=texts,
                opted=opted, fold=fold,
            )  # fmt: skip
            PREFOLDED_EVENTS.labels(self.name, "kept").inc(looked_at - len(touched))
            PREFOLDED_EVENTS.labels(self.name, "folded_again").inc(len(touched))
        if touched:
            await _fold(session, brand_id=brand_id, program=program, touched=touched, texts=texts, opted=opted,
                        now=now, tz=tz, fold=fold)  # fmt: skip
        if not fold.states:
            return
        await save_states_with_unit(uow, fold.states)
        await record_completions_with_unit(uow, fold.completions())

    async def after_commit(self, uow: UnitOfWork) -> None:
        """Nothing derived to update: progress, ledger and outbox rows were written in the transaction."""


async def _fold(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    program: ActiveProgram,
    touched: list[tuple[EventContext, tuple[Plan, ...]]],
    texts: Mapping[MemberId, str],
    opted: Mapping[tuple[int, MemberId], datetime],
    now: datetime,
    tz: ZoneInfo,
    fold: Fold,
) -> None:
    """Fold the events of ``touched`` from the members' stored ``texts``, in order, into ``fold``."""
    members = {
        member_id: _Member.of(decode_encoded_state(texts[member_id]) if member_id in texts else None)
        for member_id in {ctx.member_id for ctx, _ in touched}
    }
    firsts = [
        (ctx, plan.challenge, instance_of(plan.challenge.recurrence, ctx.event.occurred_at, tz))
        for ctx, plans in touched
        for plan in plans
        if plan.first and _passes(plan, ctx, now=now, tz=tz, opted=opted)
    ]
    dirty = (
        await _seed_firsts(session, brand_id=brand_id, candidates=firsts, members=members, fold=fold)
        if firsts
        else set()
    )
    _advance(touched, members, dirty=dirty, completed=fold.completed, now=now, tz=tz, opted=opted)
    _prune(members, dirty, program.recurring, now=now, tz=tz)
    fold.states.update((member_id, members[member_id].encoded()) for member_id in dirty)


async def _seed_firsts(
    session: AsyncSession,
    *,
    brand_id: BrandId,
    candidates: list[tuple[EventContext, Challenge, str]],
    members: dict[MemberId, _Member],
    fold: Fold,
) -> set[MemberId]:
    """For the screened ``(event, first challenge, instance)`` candidates, look for an earlier matching event.

    Only members with no progress on the challenge yet are looked up (recorded in ``fold.asked`` and
    ``fold.prior``).

    Returns:
        The members found to have one (their state changed and must be saved).
    """
    earliest: dict[tuple[int, MemberId], tuple[EventContext, Challenge, str]] = {}
    for candidate in candidates:
        ctx, challenge, _instance = candidate
        if not members[ctx.member_id].has(challenge.key):
            pair = (challenge.id, ctx.member_id)
            known = earliest.get(pair)
            if known is None or ctx.event.occurred_at < known[0].event.occurred_at:
                earliest[pair] = candidate
    found = await lookup_prior(
        session, brand_id=brand_id, candidates=[(ctx, challenge) for ctx, challenge, _ in earliest.values()]
    )
    seeded: set[MemberId] = set()
    for (challenge_id, member_id), (ctx, challenge, instance) in earliest.items():
        fold.asked.setdefault(member_id, set()).add((challenge_id, ctx.index))
        if (challenge_id, member_id) in found:
            # Remembered (and stored) so the log is searched once per member and challenge.
            fold.prior.setdefault(member_id, set()).add(challenge_id)
            member = members[member_id]
            member.instances(challenge.key)[instance] = Progress(kind=challenge.kind, prior=True)
            member.changed.add(challenge.key)
            seeded.add(member_id)
    return seeded


def _advance(
    touched: list[tuple[EventContext, tuple[Plan, ...]]],
    members: dict[MemberId, _Member],
    *,
    dirty: set[MemberId],
    completed: list[tuple[int, Completion]],
    now: datetime,
    tz: ZoneInfo,
    opted: Mapping[tuple[int, MemberId], datetime],
) -> None:
    """Apply each event to the challenges that look at it, in order; mark changed members ``dirty``.

    The hot loop: it runs once per event and live challenge, so it calls nothing it can do without.
    """
    for ctx, plans in touched:
        event, view, member_id = ctx.event, ctx.member, ctx.member_id
        late = now - event.occurred_at
        member = members[member_id]
        decoded, member_completions = member.decoded, member.completions
        instance_ids: dict[str, str] = {"none": ""}  # of this event, per recurrence
        changed = False
        opened_now: list[str] = []  # completed by this event: they open nothing before the next one
        for plan in plans:
            challenge = plan.challenge
            # Most plans have nothing to check (this runs once per event and live challenge): no call.
            if not (plan.unconditional and (plan.retention is None or late < plan.retention)) and not _passes(
                plan, ctx, now=now, tz=tz, opted=opted
            ):
                continue
            if plan.gated and not is_unlocked(challenge, member_completions, just_completed=opened_now):
                continue  # locked: the challenges it requires were not completed before this event
            key = challenge.key
            completions = member_completions.get(key, 0)
            if plan.settled_at is not None and completions >= plan.settled_at:
                continue  # already completed or capped: the event would change nothing, so nothing is decoded
            instance = instance_ids.get(challenge.recurrence)
            if instance is None:
                instance = instance_ids[challenge.recurrence] = instance_of(challenge.recurrence, event.occurred_at, tz)
            instances = decoded.get(key)
            if instances is None:
                instances = member.instances(key)
            before = instances.get(instance)
            if before is None or before.kind != challenge.kind:
                before = Progress(kind=challenge.kind)  # no identity: the keys it is stored under say it
            new, caused, reason, _ = apply_event(challenge, before, event, tz, view, completions, False, instance)
            if new is not before:
                instances[instance] = new
                member.changed.add(key)
                changed = True
            if caused:
                ctx.effects.extend(caused)
                if reason is Reason.COMPLETED:
                    member_completions[key] = completions + 1
                    opened_now.append(key)
                    completed.append((ctx.index, _completion(challenge, ctx, instance)))
        if changed:
            dirty.add(member_id)


def _completion(challenge: Challenge, ctx: EventContext, instance: str) -> Completion:
    return Completion(
        challenge_id=challenge.id,
        member_id=ctx.member_id,
        instance=instance,
        completed_at=ctx.event.occurred_at,
        event_key=ctx.event.id,
    )


def _prune(
    members: dict[MemberId, _Member],
    dirty: set[MemberId],
    recurring: Mapping[str, Challenge],
    *,
    now: datetime,
    tz: ZoneInfo,
) -> None:
    """Drop the ended instances of recurring challenges the members' events changed."""
    for member_id in dirty:
        member = members[member_id]
        for key in member.changed & recurring.keys():
            instances = member.decoded[key]
            if len(instances) > 1:  # the current instance alone never needs pruning yet
                member.decoded[key] = prune_instances(instances, recurring[key], now=now, tz=tz)
