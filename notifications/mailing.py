"""Email from the notifications queue: instant or one daily digest, quiet hours, retries with backoff.

The feed rows are the durable queue (``email_state``/``email_due_at``). :func:`dispatch` claims due rows in a
short transaction (``SKIP LOCKED`` on PostgreSQL, and a lease: a claimed row is due again only after
:data:`~notifications.models.CLAIM_LEASE`), decides for each — not wanted by email (skipped), quiet hours
(due again when they end), a member on the daily digest (held until the digest hour, then all their held
rows go out in one mail) — sends outside any transaction, and records the outcome: sent, or due again
after the retry schedule, or failed once it is exhausted. Templates are rendered by the caller's
:class:`Renderer` (``web/`` owns Jinja2).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import msgspec
from sqlalchemy import BigInteger, select, update

from engine.db import batches, one_of
from engine.ids import BrandId
from engine.orm import MemberRow
from engine.tenants import Brand, get_brand_by_id
from notifications import preferences
from notifications.models import (
    CLAIM_LEASE,
    BrandControls,
    Item,
    MemberChoices,
    controls_of,
    next_digest_at,
    quiet_until,
    retry_at,
    wants_email,
)
from notifications.orm import NotificationRow

if TYPE_CHECKING:
    from datetime import datetime

    from engine.db import Database
    from engine.mail import EmailSender, Mail

log = logging.getLogger(__name__)

BATCH = 200


class Recipient(msgspec.Struct, frozen=True, kw_only=True):
    """Who an email goes to."""

    member_id: int
    external_id: str
    email: str
    name: str
    locale: str


class Renderer(Protocol):
    """Renders one email (one notification, or a digest of several) for a member."""

    def render(
        self, *, brand: Brand, recipient: Recipient, items: list[Item], digest: bool, overrides: preferences.Overrides
    ) -> Mail:
        """The mail, with ``List-Unsubscribe`` headers and an unsubscribe link."""
        ...


@dataclass(slots=True)
class DispatchReport:
    """What one pass did."""

    sent: int = 0
    """Emails sent (a digest counts once)."""
    skipped: int = 0
    held: int = 0
    """Rows held by quiet hours or for the daily digest."""
    retried: int = 0
    failed: int = 0


@dataclass(slots=True)
class _Job:
    brand: Brand
    recipient: Recipient
    rows: list[NotificationRow] = field(default_factory=list)
    digest: bool = False


async def dispatch(db: Database, *, sender: EmailSender, renderer: Renderer, now: datetime) -> DispatchReport:
    """Send every email that is due; answers what happened.

    Rows are claimed :data:`BATCH` at a time, each batch sent before the next is claimed, until a claim
    finds fewer: a backlog longer than one claim is drained in the one pass. Every claimed row leaves the
    due rows (sent, skipped, held or leased), so the passes end.
    """
    report = DispatchReport()
    while True:
        jobs, claimed = await _claim(db, now=now, report=report)
        if jobs:
            await _send(db, jobs, sender=sender, renderer=renderer, now=now, report=report)
        if claimed < BATCH:
            return report


async def _send(
    db: Database, jobs: list[_Job], *, sender: EmailSender, renderer: Renderer, now: datetime, report: DispatchReport
) -> None:
    """Send the claimed jobs outside any transaction, then record each outcome."""
    async with db.read() as session:
        overrides = {
            brand_id: await preferences.overrides(session, brand_id=brand_id) for brand_id in {j.brand.id for j in jobs}
        }
    outcomes: list[tuple[list[int], str]] = []
    for job in jobs:
        items = [Item(id=r.id, kind=r.kind, data=dict(r.data or {}), created_at=r.created_at) for r in job.rows]
        try:
            mail = renderer.render(
                brand=job.brand, recipient=job.recipient, items=items, digest=job.digest,
                overrides=overrides[job.brand.id],
            )  # fmt: skip
            await sender.send(mail, now=now)
        except Exception as exc:  # any delivery failure is retried on the schedule
            log.warning("notification email to member %s failed: %s", job.recipient.member_id, type(exc).__name__)
            outcomes.append(([r.id for r in job.rows], type(exc).__name__))
        else:
            outcomes.append(([r.id for r in job.rows], ""))
    async with db.write() as session:
        for ids, error in outcomes:
            if not error:
                report.sent += 1
                await session.execute(
                    update(NotificationRow)
                    .where(NotificationRow.id.in_(ids))
                    .values(email_state="sent", email_error="")
                )
                continue
            for row in await session.scalars(select(NotificationRow).where(NotificationRow.id.in_(ids))):
                row.email_attempts += 1
                row.email_error = error[:200]
                again = retry_at(row.email_attempts, now)
                if again is None:
                    row.email_state = "failed"
                    report.failed += 1
                else:
                    row.email_due_at = again
                    report.retried += 1


async def _claim(db: Database, *, now: datetime, report: DispatchReport) -> tuple[list[_Job], int]:
    """Decide up to :data:`BATCH` due rows and lease those to send now; answers the mails and the rows read."""
    async with db.write() as session:
        query = (
            select(NotificationRow)
            .where(NotificationRow.email_state.in_(("pending", "digest")), NotificationRow.email_due_at <= now)
            .order_by(NotificationRow.id)
            .limit(BATCH)
        )
        if db.is_postgres:
            query = query.with_for_update(skip_locked=True)
        rows = list(await session.scalars(query))
        if not rows:
            return [], 0
        brands: dict[int, Brand] = {}
        for brand_id in {r.brand_id for r in rows}:
            brands[brand_id] = await get_brand_by_id(session, BrandId(brand_id))
        member_ids = sorted({r.member_id for r in rows})  # at most BATCH: one list on either backend
        member_rows = await session.scalars(
            select(MemberRow).where(one_of(session, MemberRow.id, member_ids, BigInteger()))
        )
        recipients = {
            m.id: Recipient(
                member_id=m.id,
                external_id=m.external_id,
                email=m.email or "",
                name=m.display_name or m.external_id,
                locale=m.locale or "",
            )
            for m in member_rows
        }
        choices = await preferences.choices_of(session, member_ids=list(recipients))
        controls = {brand_id: controls_of(brand.settings) for brand_id, brand in brands.items()}
        jobs: dict[tuple[int, str], _Job] = {}
        moves: dict[_Move, list[int]] = {}
        lease = _Move(state=None, due=now + CLAIM_LEASE)
        for row in rows:
            decided = _decide(
                row, brands[row.brand_id], controls[row.brand_id], recipients.get(row.member_id), choices,
                now=now, report=report,
            )  # fmt: skip
            if isinstance(decided, _Move):
                moves.setdefault(decided, []).append(row.id)
                continue
            key = (row.member_id, "digest") if decided.digest else (row.member_id, str(row.id))
            jobs.setdefault(key, decided).rows.append(row)
            moves.setdefault(lease, []).append(row.id)
        for move, ids in moves.items():  # one statement per outcome, not one per row
            values: dict[str, Any] = {}
            if move.state is not None:
                values["email_state"] = move.state
            if move.due is not None:
                values["email_due_at"] = move.due
            for chunk in batches(session, ids):
                await session.execute(
                    update(NotificationRow)
                    .where(one_of(session, NotificationRow.id, chunk, BigInteger()))
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
    return list(jobs.values()), len(rows)


@dataclass(frozen=True, slots=True)
class _Move:
    """What a claim does to a row it does not send now: its new state and when it is due (``None``: unchanged)."""

    state: str | None
    due: datetime | None


_SKIPPED = _Move(state="skipped", due=None)


def _decide(
    row: NotificationRow,
    brand: Brand,
    controls: BrandControls,
    recipient: Recipient | None,
    choices: dict[int, MemberChoices],
    *,
    now: datetime,
    report: DispatchReport,
) -> _Job | _Move:
    """The row skipped or held (a :class:`_Move`), or the job it is sent with (``controls``: the brand's)."""
    chosen = choices.get(row.member_id, MemberChoices())
    if recipient is None or not recipient.email or not wants_email(row.kind, controls, chosen):
        report.skipped += 1
        return _SKIPPED
    if row.email_state == "pending" and chosen.digest:
        report.held += 1
        return _Move(state="digest", due=next_digest_at(now, brand.tz, controls.digest_hour))
    quiet = quiet_until(now, brand.tz, controls)
    if quiet is not None:
        report.held += 1
        return _Move(state=None, due=quiet)
    return _Job(brand=brand, recipient=recipient, digest=row.email_state == "digest")
