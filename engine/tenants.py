"""Brands (tenants) and their API keys.

Keys are shown once and stored as SHA-256 hashes. ``sk_live_…`` secret keys are for the brand's
servers (events, admin); ``pk_live_…`` publishable keys may only read what a widget shows. Every query
in Questline is scoped by the brand a key resolves to.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import select, update

from engine import audit
from engine.errors import AuthenticationError, Conflict, NotFound, ValidationError
from engine.ids import BrandId
from engine.orm import ApiKeyRow, BrandRow
from engine.periods import zone

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.db import Database


class KeyKind(StrEnum):
    """What a key may do."""

    SECRET = "secret"
    PUBLISHABLE = "publishable"


_PREFIX = {KeyKind.SECRET: "sk_live_", KeyKind.PUBLISHABLE: "pk_live_"}
SLUG = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9\-]*$")]


class Brand(msgspec.Struct, frozen=True, kw_only=True):
    """A tenant, as the rest of the code sees it."""

    id: BrandId
    slug: str
    name: str
    timezone: str
    config_version: int = 1
    settings: dict[str, Any] = {}

    @property
    def tz(self) -> ZoneInfo:
        """The brand's timezone."""
        return ZoneInfo(self.timezone)


class ApiKeyInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A key as listed (never the key itself)."""

    id: int
    kind: KeyKind
    prefix: str
    label: str
    created_at: datetime
    revoked_at: datetime | None


class IssuedKey(msgspec.Struct, frozen=True, kw_only=True):
    """A freshly issued key: the only time its full value is visible."""

    kind: KeyKind
    key: str
    prefix: str


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: a brand and the kind of key it used."""

    brand: Brand
    kind: KeyKind
    key_id: int
    prefix: str = ""
    """The key's non-secret prefix (who made a change, in the audit log)."""


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def slugify(name: str) -> str:
    """A URL-safe slug from a brand name (``Caffè Roma`` → ``caffe-roma``)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:64]
    if not slug:
        raise ValidationError("the brand name needs at least one letter or digit", field="name")
    return slug


def _to_brand(row: BrandRow) -> Brand:
    return Brand(
        id=BrandId(row.id),
        slug=row.slug,
        name=row.name,
        timezone=row.timezone,
        config_version=row.config_version,
        settings=dict(row.settings or {}),
    )


def _new_key(kind: KeyKind) -> tuple[str, str]:
    key = _PREFIX[kind] + secrets.token_urlsafe(24)
    return key, key[: len(_PREFIX[kind]) + 6]


async def _issue(
    session: AsyncSession,
    *,
    brand_id: int,
    kind: KeyKind,
    now: datetime,
    label: str = "",
    key: str | None = None,
) -> IssuedKey:
    if key is None:
        key, prefix = _new_key(kind)
    else:
        prefix = key[: len(_PREFIX[kind]) + 6]
    session.add(
        ApiKeyRow(
            brand_id=brand_id,
            kind=kind.value,
            prefix=prefix,
            key_hash=hash_key(key),
            label=label,
            created_at=now,
        )
    )
    await session.flush()
    return IssuedKey(kind=kind, key=key, prefix=prefix)


async def create_brand(
    db: Database,
    *,
    name: str,
    timezone: str,
    now: datetime,
    slug: str | None = None,
    fixed_keys: dict[KeyKind, str] | None = None,
) -> tuple[Brand, list[IssuedKey]]:
    """Create a brand with one secret and one publishable key.

    ``fixed_keys`` sets the keys' values instead of drawing random ones (the local demo brand only).

    Raises:
        ValidationError: unknown timezone or unusable name.
        Conflict: a brand with that slug exists.
    """
    zone(timezone)
    slug = slug or slugify(name)
    async with db.write() as session:
        exists = await session.scalar(select(BrandRow.id).where(BrandRow.slug == slug))
        if exists is not None:
            raise Conflict(f"a brand with slug {slug!r} already exists", field="name")
        row = BrandRow(slug=slug, name=name, timezone=timezone, config_version=1, settings={}, created_at=now)
        session.add(row)
        await session.flush()
        keys = [
            await _issue(session, brand_id=row.id, kind=kind, now=now, key=(fixed_keys or {}).get(kind))
            for kind in KeyKind
        ]
        return _to_brand(row), keys


async def get_brand(session: AsyncSession, slug: str) -> Brand:
    """The brand called ``slug``.

    Raises:
        NotFound: no such brand.
    """
    row = await session.scalar(select(BrandRow).where(BrandRow.slug == slug))
    if row is None:
        raise NotFound(f"no brand {slug!r}", field="brand")
    return _to_brand(row)


async def get_brand_by_id(session: AsyncSession, brand_id: BrandId) -> Brand:
    """The brand with ``brand_id`` (current config version included)."""
    # Reloading the row (the version is bumped by a Core UPDATE) would drop changes the session has not
    # written yet, such as settings a program section just set: write them first.
    await session.flush()
    row = await session.get(BrandRow, brand_id, populate_existing=True)
    if row is None:
        raise NotFound(f"no brand {brand_id}", field="brand")
    return _to_brand(row)


async def list_brands(session: AsyncSession) -> list[Brand]:
    """Every brand, by slug."""
    rows = await session.scalars(select(BrandRow).order_by(BrandRow.slug))
    return [_to_brand(r) for r in rows]


async def bump_config_version(session: AsyncSession, brand_id: BrandId) -> None:
    """Mark the brand's definitions as changed so every worker reloads its rule cache."""
    await session.execute(
        update(BrandRow).where(BrandRow.id == brand_id).values(config_version=BrandRow.config_version + 1)
    )


async def config_version(session: AsyncSession, brand_id: BrandId) -> int:
    """The brand's current definitions version."""
    version = await session.scalar(select(BrandRow.config_version).where(BrandRow.id == brand_id))
    return int(version or 0)


async def list_keys(session: AsyncSession, brand_id: BrandId) -> list[ApiKeyInfo]:
    """The brand's keys, newest first (prefixes only)."""
    rows = await session.scalars(select(ApiKeyRow).where(ApiKeyRow.brand_id == brand_id).order_by(ApiKeyRow.id.desc()))
    return [
        ApiKeyInfo(
            id=r.id,
            kind=KeyKind(r.kind),
            prefix=r.prefix,
            label=r.label,
            created_at=r.created_at,
            revoked_at=r.revoked_at,
        )
        for r in rows
    ]


async def issue_key(
    db: Database, *, brand_id: BrandId, kind: KeyKind, now: datetime, label: str = "", actor: str = "system"
) -> IssuedKey:
    """Issue one more key of ``kind`` for the brand (audited as ``actor``)."""
    async with db.write() as session:
        issued = await _issue(session, brand_id=brand_id, kind=kind, now=now, label=label)
        await audit.record(
            session, brand_id=brand_id, actor=actor, action="key.created", at=now, target=issued.prefix,
            details={"kind": kind.value, "label": label},
        )  # fmt: skip
        return issued


async def revoke_key(db: Database, *, brand_id: BrandId, prefix: str, now: datetime, actor: str = "system") -> int:
    """Revoke the brand's live keys starting with ``prefix``; returns how many.

    Raises:
        NotFound: no live key of the brand has that prefix.
    """
    async with db.write() as session:
        result = await session.execute(
            update(ApiKeyRow)
            .where(
                ApiKeyRow.brand_id == brand_id,
                ApiKeyRow.prefix.startswith(prefix),
                ApiKeyRow.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
        count = int(getattr(result, "rowcount", 0) or 0)
        if count:
            await audit.record(
                session, brand_id=brand_id, actor=actor, action="key.revoked", at=now, target=prefix,
                details={"keys": count},
            )  # fmt: skip
    if count == 0:
        raise NotFound(f"no live key starting with {prefix!r}", field="prefix")
    KeyCache.clear_all()
    return count


async def rotate_key(
    db: Database, *, brand_id: BrandId, kind: KeyKind, now: datetime, actor: str = "system"
) -> IssuedKey:
    """Issue a new key of ``kind`` and revoke the brand's other live keys of that kind, in one transaction."""
    async with db.write() as session:
        await session.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.brand_id == brand_id, ApiKeyRow.kind == kind.value, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        issued = await _issue(session, brand_id=brand_id, kind=kind, now=now)
        await audit.record(
            session, brand_id=brand_id, actor=actor, action="key.rotated", at=now, target=issued.prefix,
            details={"kind": kind.value},
        )  # fmt: skip
    KeyCache.clear_all()
    return issued


class KeyCache:
    """A short-lived in-process cache of key → principal, so a request costs no key lookup query.

    Revocation clears every cache in this process at once; other worker processes notice within
    ``ttl`` seconds (default 5).
    """

    _instances: list[KeyCache] = []  # noqa: RUF012 - process-wide registry on purpose

    def __init__(self, db: Database, *, ttl: float = 5.0) -> None:
        self._db = db
        self._ttl = ttl
        self._entries: dict[str, tuple[float, Principal]] = {}
        KeyCache._instances.append(self)

    @classmethod
    def clear_all(cls) -> None:
        """Forget every cached key in this process."""
        for cache in cls._instances:
            cache._entries.clear()

    async def resolve(self, key: str) -> Principal:
        """The brand and kind ``key`` stands for.

        Raises:
            AuthenticationError: unknown or revoked key.
        """
        hashed = hash_key(key)
        hit = self._entries.get(hashed)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        async with self._db.read() as session:
            row = await session.execute(
                select(ApiKeyRow, BrandRow)
                .join(BrandRow, BrandRow.id == ApiKeyRow.brand_id)
                .where(ApiKeyRow.key_hash == hashed, ApiKeyRow.revoked_at.is_(None))
            )
            found = row.first()
        if found is None:
            self._entries.pop(hashed, None)
            raise AuthenticationError("unknown or revoked API key")
        key_row, brand_row = found
        principal = Principal(
            brand=_to_brand(brand_row), kind=KeyKind(key_row.kind), key_id=key_row.id, prefix=key_row.prefix
        )
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[hashed] = (time.monotonic() + self._ttl, principal)
        return principal
