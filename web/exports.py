"""Each domain's section of a member's data export (GDPR Art. 15 and 20), typed as ``web.deps.ExportHook``.

``web/wiring.py`` registers one hook per domain in ``export_hooks``; ``GET /v1/members/{id}/export``
answers them as JSON (``sections``) or as a readable HTML page (``?format=html``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import select

from badges import repository as badges_repo
from engine import lots, point_views, points, review
from engine import members as members_repo
from engine.clock import Clock
from leaderboards import people_repo, totals_repo
from leaderboards import repository as boards_repo
from leaderboards.orm import BoardArchiveRow
from leagues import repository as leagues_repo
from rewards import repository as rewards_repo
from web.i18n import N_, Translator, negotiate
from web.pages import rendering, security
from web.schemas.members import MemberExport, MemberOut

if TYPE_CHECKING:
    from litestar import Request
    from litestar.response import Template
    from sqlalchemy.ext.asyncio import AsyncSession

    from engine.ids import MemberId
    from engine.tenants import Brand
    from web.deps import Services

ALL_REDEMPTIONS = 100_000


class PointsExport:
    """Points: available, pending and expiring figures, and the open lots (what is left of each earning)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    async def __call__(self, session: AsyncSession, brand: Brand, member_id: MemberId) -> object:
        """The member's points section."""
        view = await point_views.points_view(session, brand=brand, member_id=member_id, now=self._clock.now())
        open_lots = await lots.open_lots(session, brand_id=brand.id, member_id=member_id)
        return {"summary": msgspec.to_builtins(view), "lots": msgspec.to_builtins(open_lots)}


async def badges_export(session: AsyncSession, brand: Brand, member_id: MemberId) -> object:
    """Badges: every award (revoked ones included, with their reason)."""
    awards = await badges_repo.member_awards(session, brand_id=brand.id, member_id=member_id)
    return {"awards": msgspec.to_builtins(awards)}


async def leaderboards_export(session: AsyncSession, brand: Brand, member_id: MemberId) -> object:
    """Boards: display preference, totals per board and period, and archived final standings."""
    keys = {b.id: b.key for b in await boards_repo.load_boards(session, brand_id=brand.id)}
    infos = await people_repo.member_infos(session, brand_id=brand.id, member_ids=[member_id])
    info = infos.get(int(member_id))
    totals = await totals_repo.member_totals(session, brand_id=brand.id, member_id=member_id)
    archived = await session.scalars(
        select(BoardArchiveRow)
        .where(BoardArchiveRow.brand_id == brand.id, BoardArchiveRow.member_id == member_id)
        .order_by(BoardArchiveRow.id)
    )
    return {
        "preference": {
            "opt_out": info.opt_out if info else False,
            "display": info.display if info else "",
            "pseudonym": info.pseudonym if info else "",
        },
        "totals": [
            {
                "board": keys.get(t.board_id, str(t.board_id)),
                "period": t.period,
                "scope": t.scope,
                "units": t.units,
                "reached_at": t.reached_at.isoformat(),
            }
            for t in totals
        ],
        "archives": [
            {
                "board": keys.get(a.board_id, str(a.board_id)),
                "period": a.period,
                "scope": a.scope,
                "rank": a.rank,
                "units": a.units,
            }
            for a in archived
        ],
    }


async def rewards_export(session: AsyncSession, brand: Brand, member_id: MemberId) -> object:
    """Rewards: every redemption (codes included: they are the member's)."""
    found = await rewards_repo.list_redemptions(session, brand_id=brand.id, member_id=member_id, limit=ALL_REDEMPTIONS)
    return {"redemptions": [msgspec.to_builtins(r) for _, r in found]}


async def leagues_export(session: AsyncSession, brand: Brand, member_id: MemberId) -> object:
    """Leagues: every placement (league, period, division, cohort, final rank and zone)."""
    return {"placements": await leagues_repo.member_seats(session, brand_id=brand.id, member_id=member_id)}


async def review_export(session: AsyncSession, brand: Brand, member_id: MemberId) -> object:
    """Events held by velocity limits, with their review status."""
    return {"held_events": await review.member_held(session, brand_id=brand.id, member_id=member_id)}


#: Section titles of the HTML page (the JSON keeps the section names).
SECTION_TITLES = {
    "challenges": N_("Challenges"),
    "points": N_("Points and lots"),
    "badges": N_("Badges"),
    "leaderboards": N_("Leaderboards"),
    "rewards": N_("Rewards"),
    "leagues": N_("Leagues"),
    "review": N_("Events held for review"),
}


def export_page(request: Request[Any, Any, Any], brand: Brand, found: MemberExport) -> Template:
    """The export as a readable HTML page, in the member's language (else the browser's)."""
    t = Translator(negotiate(found.member.locale or None, accept_language=request.headers.get("accept-language")))
    data = msgspec.to_builtins(found)
    return rendering.page(
        "export.html.jinja2",
        {
            "t": t,
            "accent": None,
            "brand_name": brand.name,
            "exported_at": t.datetime(found.exported_at, brand.tz),
            "member": data["member"],
            "sections": data["sections"],
            "section_titles": {name: t.gettext(title) for name, title in SECTION_TITLES.items()},
            "ledger": data["ledger"],
            "events": data["events"],
        },
        nonce=security.new_nonce(),
    )


async def build_export(
    services: Services, brand: Brand, external_id: str, *, from_replica: bool = False
) -> MemberExport:
    """Everything Questline holds about the member: identity, ledger, events and every domain's section.

    Raises:
        NotFound: no such member in this brand.
    """
    # A brand's export may lag by the replica's delay; the member's own self-service export reads the primary.
    async with services.db.replica() if from_replica else services.db.read() as session:
        member = await members_repo.get_member(session, brand_id=brand.id, external_id=external_id)
        balance = await points.balance(session, brand_id=brand.id, member_id=member.id)
        entries = await points.all_entries(session, brand_id=brand.id, member_id=member.id)
        events = await members_repo.member_events(session, brand_id=brand.id, member_id=member.id)
        sections = {name: await hook(session, brand, member.id) for name, hook in services.export_hooks.items()}
    out = MemberOut(
        external_id=member.external_id,
        display_name=member.display_name,
        locale=member.locale,
        attributes=member.attributes,
        created_at=member.created_at,
        points=balance,
    )
    return MemberExport(member=out, ledger=entries, events=events, sections=sections, exported_at=services.clock.now())
