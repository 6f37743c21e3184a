"""Dependencies the handlers receive: services, the calling principal, the clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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
from engine.ids import MemberId
from engine.pipeline import Pipeline
from engine.settings import Settings
from engine.tenants import Brand, KeyCache, KeyKind, Principal

#: ``async hook(session, brand, member_id)`` run inside the erasure transaction.
ErasureHook = Callable[[AsyncSession, Brand, MemberId], Awaitable[None]]
#: ``async hook(brand, member_id)`` after a member's profile changed (display names on boards).
MemberUpdateHook = Callable[[Brand, MemberId], Awaitable[None]]
#: ``async hook(session, brand, member_id) -> plain data`` for a member's data export.
ExportHook = Callable[[AsyncSession, Brand, MemberId], Awaitable[Any]]


@dataclass
class Services:
    """Everything ``create_app`` builds once and handlers share."""

    settings: Settings
    db: Database
    redis: Redis
    clock: Clock
    pipeline: Pipeline
    keys: KeyCache
    egress: EgressGuard = field(default_factory=EgressGuard)
    """Checks webhook URLs (no internal addresses) at registration and delivery."""
    extras: dict[str, Any] = field(default_factory=dict)
    """Domain services registered by the composition root (board store, etc.), by name."""
    erasure_hooks: list[ErasureHook] = field(default_factory=list)
    """What each domain removes when a member is erased (registered in the domains' ``startup``)."""
    export_hooks: dict[str, ExportHook] = field(default_factory=dict)
    member_update_hooks: list[MemberUpdateHook] = field(default_factory=list)
    """Run after an existing member's profile changed (e.g. refresh board labels)."""
    """Each domain's part of a member's data export, by section name."""


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
