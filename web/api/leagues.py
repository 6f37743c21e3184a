"""Leagues over HTTP: a league's definition, and a member's division, cohort and zones (secret key)."""

from __future__ import annotations

from litestar import Controller, Response, get, put
from litestar.di import Provide
from litestar.params import FromPath, JSONBody

from engine import members as members_repo
from engine.errors import DefinitionError, ValidationError
from engine.ids import MemberId
from leagues import repository as leagues_repo
from leagues.models import LeagueSpec, check_spec
from leagues.views import member_league
from web.deps import PrincipalDep, ServicesDep, provide_secret_principal
from web.openapi import answers
from web.schemas.leagues import LeagueStandingOut, MemberLeagueOut


class LeaguesController(Controller):
    """League definitions and members' league standings (secret key)."""

    path = "/v1/leagues"
    tags = ("leagues",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get("/{key:str}", summary="Get a league")
    async def get_league(self, key: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> LeagueSpec:
        """The league's definition; 404 when the brand has none called ``key``."""
        async with services.db.read() as session:
            return (await leagues_repo.get_league(session, brand_id=principal.brand.id, key=key)).spec

    @put(
        "/{key:str}", summary="Create or replace a league", responses=answers(201, LeagueSpec, "The league was created")
    )
    async def put_league(
        self, key: FromPath[str], data: JSONBody[LeagueSpec], services: ServicesDep, principal: PrincipalDep
    ) -> Response[LeagueSpec]:
        """Validated (its board must exist, be unscoped and have daily, weekly or monthly periods). 201 when new."""
        if data.key != key:
            raise ValidationError(f"the body's key {data.key!r} differs from the path's {key!r}", field="$.key")
        spec = check_spec(data)
        brand, now = principal.brand, services.clock.now()
        async with services.db.write() as session:
            board = await services.league_scores(session, brand=brand, board_key=spec.board, period=None, now=now)
            if board is None:
                raise DefinitionError(
                    f"no active, unscoped daily, weekly or monthly leaderboard {spec.board!r}", field="$.board"
                )
            outcome = await leagues_repo.save_league(session, brand_id=brand.id, spec=spec, now=now)
        return Response(spec, status_code=201 if outcome == "created" else 200)

    @get("/{key:str}/members/{external_id:str}", summary="A member's league")
    async def member(
        self, key: FromPath[str], external_id: FromPath[str], services: ServicesDep, principal: PrincipalDep
    ) -> MemberLeagueOut:
        """The member's division and cohort standings with the promotion and relegation zones."""
        brand = principal.brand
        async with services.db.read() as session:
            member = await members_repo.get_member(session, brand_id=brand.id, external_id=external_id)
        view = await member_league(
            services.db,
            scores=services.league_scores,
            brand=brand,
            key=key,
            member_id=member.id,
            now=services.clock.now(),
        )
        async with services.db.read() as session:
            ids = [MemberId(s.member_id) for s in view.standings]
            names = await members_repo.members_by_id(session, brand_id=brand.id, ids=ids)
        return MemberLeagueOut(
            league=view.spec.key,
            title=view.spec.title,
            board=view.spec.board,
            period=view.period,
            final=view.final,
            division=view.division.key,
            division_title=view.division.title,
            cohort=view.cohort,
            cohort_size=view.spec.cohort_size,
            promote=view.spec.promote,
            relegate=view.spec.relegate,
            standings=[
                LeagueStandingOut(
                    member=names[MemberId(s.member_id)].external_id if MemberId(s.member_id) in names else "",
                    rank=s.rank,
                    score=view.display(s.value),
                    zone=s.zone,
                    you=s.member_id == member.id,
                )
                for s in view.standings
            ],
        )


routes = [LeaguesController]
