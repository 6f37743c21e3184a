"""The processing pipeline: one request's events, one SQL transaction, injected domain processors.

``engine`` imports no domain package. The composition root (``web/app.py``) hands the pipeline its
processors in order; each sees the unit of work, reads and locks what it needs, and appends effects to
the events' contexts. The pipeline then writes what the effects imply (ledger entries, outbox rows, the
event log with each event's result), commits, and runs each processor's post-commit step from what was
committed (Redis boards, live updates). See DESIGN.md "How one event flows".
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import msgspec
from sqlalchemy.exc import DBAPIError, IntegrityError

from engine import eventlog, fused, member_locks, tenants
from engine import members as members_repo
from engine.effects import Effect
from engine.grants import LockColumns
from engine.ids import MemberId
from engine.metrics import PipelineObserver, StageTimer
from engine.redisconn import queue_messages
from engine.topics import outbox_row as outbox_row  # the domains import the outbox format from here
from engine.unit_writes import write_apart, write_effects

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.clock import Clock
    from engine.db import Database
    from engine.events import Event
    from engine.tenants import Brand

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
_EFFECTS_ENCODER = msgspec.json.Encoder()
HELD_STASH = "velocity.held"
"""``uow.stash``: request index → held before (a resend), for events a velocity limit held (``engine.velocity``)."""
BYPASS_STASH = "velocity.bypass"
"""``uow.stash``: set when applying reviewer-approved events (velocity limits do not hold them again)."""
_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected
PREFOLD_MIN_EVENTS = 64
"""By default, units with at least this many new events (on PostgreSQL) are offered to the :class:`Prefolds`
steps first (``QUESTLINE_PREFOLD_MIN_EVENTS``). Below it the pre-fold's own reads would cost a unit more than
its wait for the locks."""


@dataclass(slots=True)
class EventContext:
    """One new event being processed, and what it has caused so far."""

    index: int
    event: Event
    member_id: MemberId
    member: Mapping[str, Any]
    """The member's attributes as predicates see them (``member.<name>``).

    One mapping is shared by the member's events of the unit: a step replaces it (as the segments step
    does), never changes it in place."""
    effects: list[Effect] = field(default_factory=list)
    facts: Mapping[str, Any] = field(default_factory=dict)
    """Values the steps' ``lock_columns`` (``engine.grants.LockColumns``) read with the member's lock."""

    def emit(self, effect: Effect) -> None:
        """Record an effect of this event."""
        self.effects.append(effect)


@dataclass(slots=True)
class UnitOfWork:
    """What processors share inside the transaction."""

    session: AsyncSession
    db: Database
    brand: Brand
    clock: Clock
    now: datetime
    events: list[EventContext]
    """The new (non-duplicate) events in request order."""
    stash: dict[str, Any] = field(default_factory=dict)
    """Per-processor scratch space carried to the post-commit step (keyed by processor name)."""
    _config_version: int | None = None
    _publications: list[tuple[Publisher, str, bytes]] = field(default_factory=list)
    _with_unit: list[tuple[fused.Upsert, list[dict[str, Any]], Callable[[], Awaitable[None]]]] = field(
        default_factory=list
    )

    def publish(self, redis: Publisher, channel: str, payload: bytes) -> None:
        """Queue a PUBLISH for after the post-commit steps: the unit's messages go in one round trip per client."""
        self._publications.append((redis, channel, payload))

    async def write_with_unit(
        self, upsert: fused.Upsert, rows: list[dict[str, Any]], otherwise: Callable[[], Awaitable[None]]
    ) -> None:
        """Write ``rows`` in the unit's last statement on PostgreSQL (:mod:`engine.fused`), no round trip apart.

        ``otherwise()`` writes them instead: at once on SQLite, and before the pipeline's own rows where a
        PostgreSQL unit is written table by table. Nothing in the unit may read them back before the commit.

        Raises:
            ValueError: ``upsert`` was given rows already in this unit.
        """
        if not self.db.is_postgres:
            await otherwise()
            return
        if any(queued is upsert for queued, _, _ in self._with_unit):
            raise ValueError(f"rows of {upsert.table} were given twice in one unit")
        self._with_unit.append((upsert, rows, otherwise))

    def take_publications(self, redis: Publisher) -> list[tuple[str, bytes]]:
        """The (channel, payload) messages queued so far for ``redis``, handed to a post-commit step.

        The step sends them in a round trip of its own (the board writes'); the pipeline does not send them.
        """
        taken = [(channel, payload) for client, channel, payload in self._publications if client is redis]
        if taken:
            self._publications = [queued for queued in self._publications if queued[0] is not redis]
        return taken

    @property
    def tz(self) -> ZoneInfo:
        """The brand's timezone."""
        return self.brand.tz

    async def config_version(self) -> int:
        """The brand's configuration version, read once per unit of work (every definition cache keys on it)."""
        if self._config_version is None:
            self._config_version = await tenants.config_version(self.session, self.brand.id)
        return self._config_version


class Publisher(Protocol):
    """What a post-commit step publishes through (a ``redis.asyncio.Redis``)."""

    def pipeline(self, transaction: bool = True) -> Any:
        """A command pipeline (an async context manager with ``publish`` and ``execute``)."""
        ...


@runtime_checkable
class Processor(Protocol):
    """A domain step of the pipeline."""

    name: str

    async def process(self, uow: UnitOfWork) -> None:
        """Evaluate the unit's events inside the transaction; emit effects; write domain rows."""
        ...

    async def after_commit(self, uow: UnitOfWork) -> None:
        """Derived, idempotent work once the transaction committed (e.g. absolute Redis writes)."""
        ...


@dataclass(slots=True)
class Draft:
    """A unit's new events before its members are locked, for the steps that fold them ahead (:class:`Prefolds`).

    ``now`` and ``version`` are the unit's. :meth:`contexts` gives the events as the unit will see them, with
    each member as a read without its lock finds it.
    """

    db: Database
    brand: Brand
    now: datetime
    version: int
    events: list[tuple[int, Event]]
    """(index in the request, event) of the unit's new events, in order."""
    stash: dict[str, Any] = field(default_factory=dict)
    """What the steps leave for their ``process`` (copied into ``UnitOfWork.stash``)."""
    _contexts: list[EventContext] | None = None

    async def contexts(self, session: AsyncSession) -> list[EventContext]:
        """The events as contexts, their members read without a lock on ``session`` (once, on the first call).

        ``member_id`` is the member's id, or a negative stand-in for a member the unit will create; ``member``
        is its predicate view before any step ran (no lock columns: ``engine.grants.LockColumns``).
        """
        if self._contexts is None:
            found = await member_locks.read_members(
                session, brand_id=self.brand.id, external_ids=sorted({event.member for _, event in self.events})
            )
            stand_ins: dict[str, MemberId] = {}
            self._contexts = []
            for index, event in self.events:
                member = found.get(event.member)
                if member is None:  # created by the unit, as the lock statement creates it (no attributes yet)
                    member_id = stand_ins.setdefault(event.member, MemberId(-1 - len(stand_ins)))
                    view = members_repo.view_of("", {}, None)
                else:
                    member_id, view = member.id, member.predicate_view
                self._contexts.append(EventContext(index=index, event=event, member_id=member_id, member=view))
        return self._contexts


@runtime_checkable
class Prefolds(Protocol):
    """A step that does a large unit's work before the members' locks, and checks it under them.

    Units over overlapping members run one after the other, each holding its members' locks through its
    steps (``engine.member_locks.ensure_and_lock``). A step whose work is a pure fold of what it reads can fold a
    :class:`Draft` while another unit holds the locks, then, under its own, read its inputs again and keep
    the result for every member whose inputs did not change (folding the others again): the outcome is the
    one folding under the locks gives, and the locks are held for the check instead of the fold.
    """

    name: str

    async def prefold(self, draft: Draft) -> None:
        """Fold ``draft``'s events from what a read outside the locks finds; leave the result in ``draft.stash``."""
        ...


class EventResult(msgspec.Struct, kw_only=True):
    """What one event caused, as the API returns it."""

    id: str
    member: str
    duplicate: bool
    effects: list[Effect]
    held: bool = False
    """Held for review by a velocity limit (``pending_review``): nothing of it was applied."""


@dataclass(slots=True)
class _Outcome:
    uow: UnitOfWork | None
    """``None`` when every event was a duplicate (answered without a transaction)."""
    known: dict[str, list[Any]]
    first_seen: dict[str, EventContext]

    def results(self, events: Sequence[Event]) -> list[EventResult]:
        results: list[EventResult] = []
        held: dict[int, bool] = self.uow.stash.get(HELD_STASH, {}) if self.uow is not None else {}
        for index, event in enumerate(events):
            ctx = self.first_seen.get(event.id)
            if ctx is not None and ctx.index in held:
                duplicate = held[ctx.index] or ctx.index != index
                results.append(
                    EventResult(id=event.id, member=event.member, duplicate=duplicate, effects=[], held=True)
                )
                continue
            if ctx is not None and ctx.index == index:
                results.append(
                    EventResult(id=event.id, member=event.member, duplicate=False, effects=list(ctx.effects))
                )
                continue
            stored = self.known.get(event.id)
            if stored is None and ctx is not None:  # repeated inside this very request
                stored = list(ctx.effects)
            results.append(EventResult(id=event.id, member=event.member, duplicate=True, effects=list(stored or [])))
        return results


class Pipeline:
    """Runs a request's events through the processors in one transaction, with retries on races."""

    def __init__(
        self,
        db: Database,
        *,
        processors: Sequence[Processor],
        clock: Clock,
        observer: PipelineObserver | None = None,
        prefold_min_events: int = PREFOLD_MIN_EVENTS,
    ) -> None:
        self.db = db
        self._processors = tuple(processors)
        # Checked once: an isinstance against a runtime-checkable Protocol costs tens of microseconds.
        self._lock_columns = tuple(p for p in self._processors if isinstance(p, LockColumns))
        self._prefolds = tuple(p for p in self._processors if isinstance(p, Prefolds))
        self.prefold_min_events = prefold_min_events
        """Units with at least this many new events are pre-folded (:class:`Prefolds`); 0 is off."""
        self.clock = clock
        self.observer: PipelineObserver = observer or StageTimer()

    @property
    def processors(self) -> tuple[Processor, ...]:
        """The steps, in order; fixed when the pipeline is built (the composition root passes them all)."""
        return self._processors

    async def process(self, brand: Brand, events: Sequence[Event], *, approved: bool = False) -> list[EventResult]:
        """Apply ``events`` for ``brand`` exactly once and return one result per event, in order.

        ``approved`` applies events a reviewer approved: velocity limits do not hold them again.

        Post-commit steps may still append effects (e.g. the new rank) before the results are built; the
        event log's stored result is then rewritten with the complete effects, so a duplicate is answered
        exactly what the first request was.

        Raises:
            QuestlineError: a processor rejected the input; nothing was written.
        """
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                outcome = await self._attempt(brand, events, approved=approved)
            except (IntegrityError, DBAPIError) as exc:
                if attempt == MAX_ATTEMPTS or not _retryable(exc):
                    raise
                # A concurrent request inserted the same event id or member first, a deadlock was broken,
                # or the connection was lost: start over; the next attempt sees committed rows as duplicates.
                await asyncio.sleep(random.uniform(0.001, 0.01) * attempt)
                continue
            if outcome.uow is not None and outcome.uow.events:
                committed = [len(ctx.effects) for ctx in outcome.uow.events]
                await self._after_commit(outcome.uow)
                await self._store_complete_results(outcome.uow, committed)
            results = outcome.results(events)
            self.observer.processed(brand, results)
            return results
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, brand: Brand, events: Sequence[Event], *, approved: bool = False) -> _Outcome:
        # Duplicates first, from one indexed look-up outside any transaction: a request of duplicates only
        # takes no lock. An event logged after this look-up fails the unique key below; the retry sees it.
        version, known = await eventlog.known_results(self.db, brand_id=brand.id, keys=[e.id for e in events])
        fresh = [event for event in events if event.id not in known]
        if not fresh:
            return _Outcome(uow=None, known=known, first_seen={})
        now = self.clock.now()
        prepared: dict[str, Any] = {}
        least = self.prefold_min_events
        if self._prefolds and least and len(fresh) >= least and version is not None and self.db.is_postgres:
            prepared = await self._prefold(brand, events, known, version=version, now=now)
        async with self.db.unit() as session:
            columns: dict[str, Any] = {}
            for locking in self._lock_columns:
                if version is None:  # SQLite: not read with the duplicates (the unit of work reuses it)
                    version = await tenants.config_version(session, brand.id)
                columns.update(await locking.lock_columns(session, brand=brand, version=version, now=now))
            member_map = await member_locks.ensure_and_lock(
                session, db=self.db, brand_id=brand.id, external_ids=[e.member for e in fresh], now=now,
                columns=columns,
            )  # fmt: skip
            first_seen: dict[str, EventContext] = {}
            contexts: list[EventContext] = []
            views: dict[str, Mapping[str, Any]] = {}  # one view per member, shared by its events (read-only)
            for index, event in enumerate(events):
                if event.id in known or event.id in first_seen:
                    continue
                member = member_map[event.member]
                view = views.get(event.member)
                if view is None:
                    view = views[event.member] = member.predicate_view
                ctx = EventContext(index=index, event=event, member_id=member.id, member=view, facts=member.facts)
                first_seen[event.id] = ctx
                contexts.append(ctx)
            uow = UnitOfWork(
                session=session, db=self.db, brand=brand, clock=self.clock, now=now, events=contexts,
                stash=dict(prepared), _config_version=version,
            )  # fmt: skip
            if approved:
                uow.stash[BYPASS_STASH] = True
            if contexts:
                for processor in self.processors:
                    async with self.observer.stage(processor.name, "process"):
                        await processor.process(uow)
                if uow.events:  # a velocity limit may have held every event of the unit
                    await write_effects(uow)
                else:
                    await write_apart(uow)
        return _Outcome(uow=uow, known=known, first_seen=first_seen)

    async def _prefold(
        self, brand: Brand, events: Sequence[Event], known: Mapping[str, Any], *, version: int, now: datetime
    ) -> dict[str, Any]:
        """The :class:`Prefolds` steps' work on a :class:`Draft` of the unit, outside any lock; their stash.

        A failure here only costs the unit its head start: each step then does all of its work under the locks.
        """
        try:
            fresh: list[tuple[int, Event]] = []
            seen: set[str] = set()
            for index, event in enumerate(events):
                if event.id not in known and event.id not in seen:
                    seen.add(event.id)
                    fresh.append((index, event))
            draft = Draft(db=self.db, brand=brand, now=now, version=version, events=fresh)
            for step in self._prefolds:
                async with self.observer.stage(step.name, "prefold"):
                    await step.prefold(draft)
        except Exception:
            log.exception(
                "folding a unit of %d events before its locks failed; its steps fold it under them", len(events)
            )
            return {}
        return draft.stash

    async def _after_commit(self, uow: UnitOfWork) -> None:
        for processor in self.processors:
            try:
                async with self.observer.stage(processor.name, "after_commit"):
                    await processor.after_commit(uow)
            except Exception:
                # Post-commit work is derived and rebuildable: a failure must not fail a committed request.
                log.exception("post-commit step %s failed; derived state will be repaired", processor.name)
        await _publish_all(uow)

    async def _store_complete_results(self, uow: UnitOfWork, committed: Sequence[int]) -> None:
        """Rewrite the stored result of events whose post-commit steps added effects (one statement)."""
        grown = [
            (ctx.event.id, _EFFECTS_ENCODER.encode(ctx.effects))
            for ctx, count in zip(uow.events, committed, strict=True)
            if len(ctx.effects) != count
        ]
        try:
            await eventlog.rewrite_results(self.db, brand_id=uow.brand.id, results=grown)
        except Exception:
            log.exception("could not store the post-commit effects of %d events", len(grown))


async def _publish_all(uow: UnitOfWork) -> None:
    """Send the unit's queued PUBLISHes: one pipeline (one round trip) per Redis client, usually one."""
    by_client: dict[int, tuple[Publisher, list[tuple[str, bytes]]]] = {}
    for redis, channel, payload in uow._publications:
        by_client.setdefault(id(redis), (redis, []))[1].append((channel, payload))
    for redis, messages in by_client.values():
        try:
            async with redis.pipeline(transaction=False) as pipe:
                queue_messages(pipe, redis, messages)  # SPUBLISH on a Redis Cluster; fan-out script else
                await pipe.execute()
        except Exception:
            log.exception("publishing %d live message(s) failed", len(messages))


def _retryable(exc: IntegrityError | DBAPIError) -> bool:
    if isinstance(exc, IntegrityError) or exc.connection_invalidated:
        # A connection the server dropped (a restart, an idle timeout) is retried on a fresh one; the pool
        # has discarded every connection opened before it. Were it the commit that failed, the retry finds
        # the events logged and answers them as duplicates: exactly once either way.
        return True
    code = getattr(exc.orig, "sqlstate", None) or getattr(getattr(exc.orig, "__cause__", None), "sqlstate", None)
    return code in _RETRYABLE_SQLSTATES
