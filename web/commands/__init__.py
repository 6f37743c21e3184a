"""What every ``questline`` command shares: settings, the services (the server's wiring), error reporting.

Each module here adds one package's commands to the group in ``web/cli.py`` through ``register(cli)``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeVar

import click

from engine.errors import QuestlineError
from engine.settings import Settings, load_settings

if TYPE_CHECKING:
    from engine.tenants import Brand
    from web.deps import Services

T = TypeVar("T")


def settings_from_env(**overrides: Any) -> Settings:
    """Settings from ``QUESTLINE_*`` variables; a bad value exits with a clear message."""
    try:
        return load_settings(os.environ, **overrides)
    except QuestlineError as exc:
        raise click.ClickException(exc.detail) from exc


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Run an async command body, turning domain errors into a one-line message and exit code 1."""
    try:
        return asyncio.run(coro_fn())  # type: ignore[arg-type]
    except QuestlineError as exc:
        where = f" ({exc.field})" if exc.field else ""
        raise click.ClickException(f"{exc.detail}{where}") from exc


def services_for(settings: Settings, *, migrate: bool = True) -> AbstractAsyncContextManager[Services]:
    """The services a command runs with: the same wiring as the server (:func:`web.wiring.open_services`).

    The schema is upgraded first unless ``migrate`` is false; the import is lazy so ``questline --help``
    stays quick.
    """
    from web.wiring import open_services

    return open_services(settings, migrate=migrate)


def with_brand(slug: str, fn: Callable[[Services, Brand], Awaitable[None]], *, migrate: bool = True) -> None:
    """Run ``fn(services, brand)`` for brand ``slug`` with the command's services (see :func:`services_for`)."""
    from engine.tenants import get_brand

    settings = settings_from_env()

    async def body() -> None:
        async with services_for(settings, migrate=migrate) as services:
            async with services.db.read() as session:
                found = await get_brand(session, slug)
            await fn(services, found)

    run(body)
