"""What the pages show, gathered from the engine and the domain packages' public functions.

Every page and widget reads through here, so the calls into ``challenges``, ``badges`` and
``leaderboards`` live in one module. Values returned are plain structs the templates render.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import func, or_, select

from badges import repository as badges_repo
from badges import service as badges_service
from badges.models import BadgeDef, MemberBadges
from badges.openbadges import Urls
from challenges import definitions as challenges_repo
from challenges import service as challenges_service
from challenges import views as challenge_views
from engine import points
from engine.errors import QuestlineError
from engine.ids import MemberId
from engine.members import Member
from engine.orm import EventRow, LedgerRow, MemberRow
from engine.points import LedgerEntry
from engine.tenants import Brand
from engine.texts import text_in
from leaderboards import repository as boards_repo
from leaderboards.models import BoardDef, BoardPage, Entry, MemberStanding
from leaderboards.service import Leaderboards
from tiers import repository as tiers_repo
from web.deps import Services
from web.i18n import Translator
from web.i18n.localized import Localized, in_language
from web.pages.quests import ChallengeCard, card


def badge_urls(services: Services) -> Urls:
    """Public badge URLs on this deployment's origin."""
    return Urls(services.settings.public_url)


def local_url(services: Services, url: str) -> str:
    """``url`` without this deployment's origin, so pages load it from wherever they were served."""
    origin = services.settings.public_url.rstrip("/")
    return url[len(origin) :] if url.startswith(origin + "/") else url


class ActivityLine(msgspec.Struct, frozen=True, kw_only=True):
    """One line of a member's history, ready to show."""

    title: str
    detail: str
    points: int
    occurred_at: datetime


async def member_badges(services: Services, brand: Brand, member: Member, *, locale: str | None = None) -> MemberBadges:
    """The member's badge shelf (earned, in progress, locked), with images on this origin, in ``locale``.

    ``locale`` is the page's language (by default the member's).
    """
    async with services.db.read() as session:
        shelf = await badges_service.member_shelf(
            session,
            brand=brand,
            member_id=member.id,
            external_id=member.external_id,
            urls=badge_urls(services),
            locale=locale or member.locale,
        )
    return msgspec.structs.replace(
        shelf,
        earned=[msgspec.structs.replace(b, image=local_url(services, b.image)) for b in shelf.earned],
        in_progress=[msgspec.structs.replace(b, image=local_url(services, b.image)) for b in shelf.in_progress],
        locked=[msgspec.structs.replace(b, image=local_url(services, b.image)) for b in shelf.locked],
    )


async def badge_names(services: Services, brand: Brand, locale: str | None) -> dict[str, Localized]:
    """Badge key → its name in ``locale``, with the language it is written in (pages mark it with ``lang``)."""
    return {b.key: in_language(b.texts, "name", locale, b.name) for b in await badge_definitions(services, brand)}


async def badge_definitions(services: Services, brand: Brand) -> list[BadgeDef]:
    """The brand's badge definitions (without uploaded image data)."""
    async with services.db.read() as session:
        return list(await badges_repo.load_badges(session, brand.id))


async def balance(services: Services, brand: Brand, member_id: MemberId) -> int:
    """The member's points balance."""
    async with services.db.read() as session:
        return await points.balance(session, brand_id=brand.id, member_id=member_id)


async def activity(
    services: Services, brand: Brand, member: Member, t: Translator, *, limit: int, before: int | None = None
) -> tuple[list[ActivityLine], int | None]:
    """A page of the member's points history in words, newest first, and the cursor of the next page."""
    async with services.db.read() as session:
        entries, next_before = await points.history(
            session, brand_id=brand.id, member_id=member.id, limit=limit, before=before
        )
    names = await _names(services, brand, t.lang)
    return [_line(entry, names, t) for entry in entries], next_before


async def _names(services: Services, brand: Brand, locale: str) -> dict[tuple[str, str], str]:
    """Display names of what can post points (challenges, badges, boards), in ``locale``."""
    names: dict[tuple[str, str], str] = {}
    for badge in await badge_definitions(services, brand):
        names[("badge", badge.key)] = badge.in_locale(locale).name
    for key, title in (await challenge_titles(services, brand, locale)).items():
        names[("challenge", key)] = title
    for key, title in (await board_titles(services, brand, locale)).items():
        names[("board", key)] = title
    return names


def _line(entry: LedgerEntry, names: dict[tuple[str, str], str], t: Translator) -> ActivityLine:
    name = names.get((entry.source, entry.key), entry.key)
    match entry.source:
        case "rule":
            title, detail = t.event(entry.key), t("Points for an activity")
        case "challenge":
            title, detail = name, t("Challenge completed")
        case "badge":
            title, detail = name, t("Badge bonus")
        case "board":
            title, detail = name, t("Leaderboard prize")
        case "adjustment":
            title, detail = t("Adjustment"), entry.reason
        case _:
            title, detail = name, entry.reason
    return ActivityLine(title=title, detail=detail, points=entry.points, occurred_at=entry.occurred_at)


async def board_definitions(services: Services, brand: Brand) -> list[BoardDef]:
    """The brand's active leaderboards, by key."""
    async with services.db.read() as session:
        return [b for b in await boards_repo.load_boards(session, brand_id=brand.id) if b.active]


async def board_titles(services: Services, brand: Brand, locale: str | None = None) -> dict[str, str]:
    """Board key → title (in ``locale`` when given per locale)."""
    return {b.key: b.in_locale(locale).title for b in await board_definitions(services, brand)}


async def public_boards(services: Services, brand: Brand) -> list[BoardDef]:
    """The boards a widget may show (visibility ``public``)."""
    return [b for b in await board_definitions(services, brand) if b.visibility == "public"]


# --- challenges -----------------------------------------------------------------------------------------


async def member_challenges(
    services: Services, brand: Brand, member: Member, *, now: datetime, t: Translator
) -> list[ChallengeCard]:
    """The member's challenges (eligible ones, ended ones they took part in), with progress, for the portal."""
    async with services.db.read() as session:
        found = await challenge_views.member_challenges(
            session, brand=brand, member=member, now=now, locale=t.lang, segments=services.segments
        )
        compiled = await challenges_repo.load_compiled(session, brand_id=brand.id, tz=brand.tz)
        tiers = await tiers_repo.load_program(session, brand.id) if any(v.locked for v in found) else None
    recurrence = {c.key: c.recurrence for c in compiled}
    badge_names = {b.key: b.in_locale(t.lang).name for b in await badge_definitions(services, brand)}
    tier_names = {tier.key: tier.label(t.lang) for tier in tiers.tiers} if tiers is not None else {}
    return [card(view, badge_names, recurrence, t, tier_names) for view in found]


async def challenge_titles(services: Services, brand: Brand, locale: str | None = None) -> dict[str, str]:
    """Challenge key → title in ``locale`` (archived ones included, for the history of points they paid)."""
    async with services.db.read() as session:
        stored = await challenges_repo.stored_challenges(session, brand_id=brand.id, include_archived=True)
    return {c.key: text_in(c.spec.get("title", c.key), locale) or c.key for c in stored}


async def opt_in(services: Services, brand: Brand, member: Member, *, challenge: str, now: datetime) -> None:
    """Opt the member in to the campaign of ``challenge``.

    Raises:
        NotFound: no such challenge.
        Conflict: the campaign ended or the member is not eligible.
    """
    async with services.db.read() as session:
        spec = await challenges_service.get_challenge_spec(session, brand_id=brand.id, key=challenge)
    await challenges_service.opt_in(
        services.db, brand=brand, external_id=member.external_id, campaign_key=spec.campaign, now=now
    )


# --- leaderboards ---------------------------------------------------------------------------------------


class StandingView(msgspec.Struct, frozen=True, kw_only=True):
    """One board as the portal shows it to a member."""

    key: str
    title: Localized
    """In the page's language when given per locale, with the language it is written in."""
    description: str
    period_label: str
    total: int
    decimals: int
    entries: list[Entry]
    around: list[Entry]
    """The member's neighbourhood when they are below the top rows (rows already shown are left out)."""
    me: MemberStanding | None


def leaderboards(services: Services) -> Leaderboards:
    """The process's leaderboards runtime."""
    return services.leaderboards


def period_label(period: str, starts_at: datetime | None, ends_at: datetime | None, t: Translator, tz: ZoneInfo) -> str:
    """``This week · 16–22 Nov``-style wording of a board's period."""
    name = t.label("period", period)
    if starts_at is None or ends_at is None:
        return name
    last = ends_at - timedelta(seconds=1)
    if period == "daily":
        return f"{name} · {t.date(starts_at, tz)}"
    return f"{name} · {t.date(starts_at, tz)} – {t.date(last, tz)}"


async def public_board(services: Services, brand: Brand, key: str) -> BoardDef:
    """A board a widget may show.

    Raises:
        NotFound: no such board, or it is for members only.
    """
    return await leaderboards(services).board(brand, key, public=True)


async def board_page(
    services: Services,
    brand: Brand,
    key: str,
    *,
    limit: int,
    member: Member | None,
    scope: str = "",
    public: bool,
    k: int = 0,
    offset: int = 0,
    period: str = "current",
) -> BoardPage:
    """A page of a board's standings (entries carry external ids: callers must not expose them).

    Raises:
        NotFound: no such board (or not public when ``public``).
        ValidationError: a scoped board without a scope or a member to take it from.
    """
    runtime = leaderboards(services)
    await runtime.board(brand, key, public=public)
    return await runtime.read(
        brand,
        key,
        period=period,
        scope=scope or None,
        offset=offset,
        limit=limit,
        around=member.external_id if member is not None else None,
        k=k,
        public=False,
    )


async def member_standings(
    services: Services, brand: Brand, member: Member, *, limit: int, t: Translator
) -> list[StandingView]:
    """Every active board with the top ``limit`` rows and the member's own place (highlighted)."""
    runtime = leaderboards(services)
    views: list[StandingView] = []
    for board in await runtime.boards(brand):
        if not board.active:
            continue
        try:
            page = await board_page(services, brand, board.key, limit=limit, member=member, public=False, k=2)
        except QuestlineError:
            continue  # e.g. a board kept per store for a member without a store
        shown = {(e.rank, e.label) for e in page.entries}
        me_in_top = any(e.me for e in page.entries)
        around = [] if me_in_top else [e for e in page.around or [] if (e.rank, e.label) not in shown]
        views.append(
            StandingView(
                key=board.key,
                title=in_language(board.texts, "title", t.lang, board.title),
                description=board.in_locale(t.lang).description,
                period_label=period_label(board.period, page.period.starts_at, page.period.ends_at, t, brand.tz),
                total=page.total,
                decimals=board.decimals,
                entries=list(page.entries),
                around=around,
                me=page.me,
            )
        )
    return views


# --- members (console) ----------------------------------------------------------------------------------


class MemberRowView(msgspec.Struct, frozen=True, kw_only=True):
    """A member in the console's search results."""

    external_id: str
    display_name: str
    locale: str
    balance: int
    created_at: datetime
    updated_at: datetime


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search_members(services: Services, brand: Brand, query: str, *, limit: int = 50) -> list[MemberRowView]:
    """Members whose external id or name contains ``query`` (the most recently updated first)."""
    statement = select(MemberRow).where(MemberRow.brand_id == brand.id)
    if query:
        pattern = _like(query.lower())
        statement = statement.where(
            or_(
                func.lower(MemberRow.external_id).like(pattern, escape="\\"),
                func.lower(MemberRow.display_name).like(pattern, escape="\\"),
            )
        )
    async with services.db.read() as session:
        rows = list(
            await session.scalars(statement.order_by(MemberRow.updated_at.desc(), MemberRow.id.desc()).limit(limit))
        )
        totals = (
            dict(
                (
                    await session.execute(
                        select(LedgerRow.member_id, func.sum(LedgerRow.points))
                        .where(LedgerRow.brand_id == brand.id, LedgerRow.member_id.in_([r.id for r in rows]))
                        .group_by(LedgerRow.member_id)
                    )
                ).all()
            )
            if rows
            else {}
        )
    return [
        MemberRowView(
            external_id=r.external_id,
            display_name=r.display_name,
            locale=r.locale,
            balance=int(totals.get(r.id, 0) or 0),
            created_at=r.created_at,
            updated_at=r.updated_at,
        )
        for r in rows
    ]


async def event_types(services: Services, brand: Brand) -> list[str]:
    """Event types the brand has sent (for suggestions in forms), most used first."""
    async with services.db.read() as session:
        rows = await session.execute(
            select(EventRow.type, func.count())
            .where(EventRow.brand_id == brand.id)
            .group_by(EventRow.type)
            .order_by(func.count().desc())
            .limit(30)
        )
        return [str(name) for name, _count in rows]
