"""Dependencies the handlers receive: services, the calling principal, the clock.

:class:`Services` is the typed composition root every entry point shares; ``web/wiring.py`` builds it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from engine.clock import Clock
from engine.db import Database
from engine.egress import EgressGuard
from engine.errors import AuthenticationError, PermissionDenied
from engine.grants import BadgeGranter, BoardScores
from engine.ids import MemberId
from engine.mail import EmailSender, MemoryOutbox
from engine.outbox import OutboxDeliverer
from engine.pipeline import Pipeline
from engine.retraction import Retractions
from engine.settings import Settings
from engine.tenants import Brand, KeyCache, KeyKind, Principal
from leaderboards.service import Leaderboards
from segments.processor import Segments
from wallet.push import ApnsPusher, PassPusher
from web.notify_jobs import NotificationsWorker

#: ``async hook(session, brand, member_id)`` run inside the erasure transaction.
ErasureHook = Callable[[AsyncSession, Brand, MemberId], Awaitable[None]]
#: ``async hook(brand, member_id)`` after a member's profile changed (display names on boards).
MemberUpdateHook = Callable[[Brand, MemberId], Awaitable[None]]
#: ``async hook(session, brand, member_id) -> JSON-ready builtins`` for a member's data export.
ExportHook = Callable[[AsyncSession, Brand, MemberId], Awaitable[object]]


@dataclass(frozen=True, kw_only=True, slots=True)
class Services:
    """Everything the composition root builds once and the HTTP app, the CLI and background jobs share."""

    settings: Settings
    db: Database
    redis: Redis
    clock: Clock
    keys: KeyCache
    outbox: OutboxDeliverer
    """Delivers the outbox's webhooks (run in the background by the HTTP app; woken after a commit)."""
    egress: EgressGuard
    """Checks webhook URLs (no internal addresses) at registration and delivery."""
    grant_badge: BadgeGranter
    """The badges package's award service, what other domains (leaderboard rewards) call."""
    leaderboards: Leaderboards
    """The boards at run time: definitions, reads, rebuilds and the period closer."""
    league_scores: BoardScores
    """A board period's scores as leagues read them (implemented in ``web.wiring`` from the board totals)."""
    pipeline: Pipeline
    """Built once, with every domain's processors in order."""
    retractions: Retractions
    """Retraction requests, applied once with every domain's undo (engine.grants.EventUndo)."""
    erasure_hooks: tuple[ErasureHook, ...] = ()
    """What each domain removes when a member is erased, inside the erasure transaction."""
    export_hooks: Mapping[str, ExportHook] = field(default_factory=dict)
    """Each domain's part of a member's data export, by section name."""
    member_update_hooks: tuple[MemberUpdateHook, ...] = ()
    """Run after an existing member's profile changed (e.g. refresh board labels)."""
    mailer: EmailSender = field(default_factory=lambda: MemoryOutbox(sender="Questline <no-reply@questline.local>"))
    """Sends mail to members (magic links, double opt-in); an in-memory outbox without SMTP (the console shows it)."""
    wallet_pusher: PassPusher = field(default_factory=ApnsPusher)
    """Announces changed Apple passes to devices (APNs over HTTP/2; tests put a recording one in)."""
    segments: Segments = field(default_factory=Segments)
    """The brands' segments and membership (``engine.grants.SegmentMembership``), shared with the pipeline."""
    notifications: NotificationsWorker | None = None
    """Derives the members' feed from the outbox and sends notification emails (a background job)."""


#: Handler parameter types: injected by name (``services``, ``principal``, ``caller``).
ServicesDep = NamedDependency[Services]
PrincipalDep = NamedDependency[Principal]


def provide_services(state: State) -> Services:
    """The app's :class:`Services`."""
    services: Services = state.services
    return services


def _presented_key(request: Request[Any, Any, Any]) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    api_key = request.headers.get("x-api-key")
    if api_key:
        return api_key.strip()
    query_key = request.query_params.get("key")
    return query_key.strip() if query_key else None


async def provide_principal(request: Request[Any, Any, Any], services: ServicesDep) -> Principal:
    """The brand and key kind behind ``Authorization: Bearer …`` (or ``X-Api-Key``, or ``?key=`` for widgets).

    Raises:
        AuthenticationError: no key, or an unknown or revoked one.
    """
    key = _presented_key(request)
    if not key:
        raise AuthenticationError("send your API key as `Authorization: Bearer <key>`")
    principal = await services.keys.resolve(key)
    if principal.kind is KeyKind.SECRET and request.query_params.get("key", "").strip() == key:
        # URLs end up in logs, histories and Referer headers: only publishable keys belong there.
        raise AuthenticationError("secret keys may not be sent in the URL; use `Authorization: Bearer <key>`")
    return principal


async def provide_secret_principal(caller: PrincipalDep) -> Principal:
    """The principal, required to hold a secret key (events, members, admin).

    Raises:
        PermissionDenied: a publishable key was used.
    """
    if caller.kind is not KeyKind.SECRET:
        raise PermissionDenied("this endpoint needs a secret key (sk_…); publishable keys only read widgets")
    return caller
