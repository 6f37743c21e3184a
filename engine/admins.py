"""Brand admin users: creation and password verification (scrypt, constant-time comparison)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING, Annotated

import msgspec
from sqlalchemy import select, update

from engine.errors import AuthenticationError, Conflict, ValidationError
from engine.ids import BrandId
from engine.orm import AdminUserRow

if TYPE_CHECKING:
    from datetime import datetime

    from engine.db import Database

_N, _R, _P = 2**14, 8, 1
MIN_PASSWORD = 10
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]


class AdminUser(msgspec.Struct, frozen=True, kw_only=True):
    """An admin of one brand."""

    id: int
    brand_id: BrandId
    email: str
    name: str


def hash_password(password: str) -> str:
    """A salted scrypt hash in the form ``scrypt$n$r$p$salt$hash``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.urlsafe_b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    expected = base64.urlsafe_b64decode(digest)
    actual = hashlib.scrypt(
        password.encode(), salt=base64.urlsafe_b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
    )
    return hmac.compare_digest(actual, expected)


async def create_admin(
    db: Database, *, brand_id: BrandId, email: str, password: str, name: str, now: datetime
) -> AdminUser:
    """Create an admin user for a brand.

    Raises:
        ValidationError: bad email or a password shorter than 10 characters.
        Conflict: the email is taken.
    """
    email = email.strip().lower()
    try:
        msgspec.convert(email, Email)
    except msgspec.ValidationError as exc:
        raise ValidationError("not an email address", field="email") from exc
    if len(password) < MIN_PASSWORD:
        raise ValidationError(f"use at least {MIN_PASSWORD} characters", field="password")
    async with db.write() as session:
        if await session.scalar(select(AdminUserRow.id).where(AdminUserRow.email == email)) is not None:
            raise Conflict("an admin with this email exists", field="email")
        row = AdminUserRow(
            brand_id=brand_id, email=email, name=name, password_hash=hash_password(password), created_at=now
        )
        session.add(row)
        await session.flush()
        return AdminUser(id=row.id, brand_id=BrandId(row.brand_id), email=row.email, name=row.name)


async def authenticate(db: Database, *, email: str, password: str, now: datetime) -> AdminUser:
    """The admin with these credentials.

    Raises:
        AuthenticationError: unknown email or wrong password (the same message for both).
    """
    email = email.strip().lower()
    async with db.read() as session:
        row = await session.scalar(select(AdminUserRow).where(AdminUserRow.email == email))
    # Hash even for an unknown email so both failures take the same time.
    stored = row.password_hash if row is not None else hash_password("unknown-user-placeholder")
    if not verify_password(password, stored) or row is None:
        raise AuthenticationError("wrong email or password")
    async with db.write() as session:
        await session.execute(update(AdminUserRow).where(AdminUserRow.id == row.id).values(last_login_at=now))
    return AdminUser(id=row.id, brand_id=BrandId(row.brand_id), email=row.email, name=row.name)


async def get_admin(db: Database, admin_id: int) -> AdminUser | None:
    """The admin with ``admin_id``, or ``None`` if it no longer exists."""
    async with db.read() as session:
        row = await session.get(AdminUserRow, admin_id)
    if row is None:
        return None
    return AdminUser(id=row.id, brand_id=BrandId(row.brand_id), email=row.email, name=row.name)
