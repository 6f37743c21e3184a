"""The portal's "Your league" page: each of the brand's leagues with the member's division, cohort and zones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from leagues import repository as leagues_repo
from leagues.views import MemberLeague, member_league
from web.i18n import Translator
from web.pages import views
from web.pages.portal import (
    PORTAL_DEPENDENCIES,
    PORTAL_EXCEPTION_HANDLERS,
    PortalViewerDep,
    _render,
)


@dataclass(frozen=True, slots=True)
class LeagueRow:
    """A cohort row as the page shows it (other members are not named: only their place and score)."""

    rank: int
    label: str
    score: float
    zone: str
    me: bool


def rows(view: MemberLeague, t: Translator, member_id: int) -> list[LeagueRow]:
    """The cohort's rows, best first."""
    return [
        LeagueRow(
            rank=s.rank,
            label=t("You") if s.member_id == member_id else t("Player %(n)s", n=index),
            score=view.display(s.value),
            zone=s.zone,
            me=s.member_id == member_id,
        )
        for index, s in enumerate(view.standings, start=1)
    ]


class PortalLeagueController(Controller):
    """The member's leagues."""

    path = "/portal/league"
    include_in_schema = False
    dependencies = PORTAL_DEPENDENCIES
    exception_handlers = PORTAL_EXCEPTION_HANDLERS

    @get("/", name="portal:league")
    async def league(self, request: Request[Any, Any, Any], viewer: PortalViewerDep) -> Template:
        """Division, cohort standings with the promotion and relegation zones, for every active league."""
        services = viewer.services
        balance = await views.balance(services, viewer.brand, viewer.member.id)
        async with services.db.read() as session:
            keys = [lg.spec.key for lg in await leagues_repo.load_leagues(session, brand_id=viewer.brand.id)]
        leagues = []
        for key in keys:
            view = await member_league(
                services.db,
                scores=services.league_scores,
                brand=viewer.brand,
                key=key,
                member_id=viewer.member.id,
                now=viewer.now,
            )
            if view.spec.active:
                leagues.append((view, rows(view, viewer.t, viewer.member.id)))
        return _render(viewer, request, "portal/league.html.jinja2", active="league", balance=balance, leagues=leagues)
