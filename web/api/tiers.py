"""Tiers over HTTP: definitions and qualification, a member's tier, overrides, benefit choices, simulation."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Response, delete, get, post, put
from litestar.di import Provide
from litestar.params import FromPath, JSONBody, QueryParameter

from engine import members as members_repo
from engine.errors import NotFound, ValidationError
from tiers import repository as tiers_repo
from tiers import service as tiers_service
from tiers.models import Qualification, TierProgram, TierSpec, build_program
from tiers.service import MemberTier
from web.deps import PrincipalDep, ServicesDep, provide_secret_principal
from web.openapi import answers
from web.schemas.tiers import (
    ChoiceIn,
    ChoiceOut,
    EvaluationOut,
    OverrideIn,
    SimulationIn,
    SimulationOut,
    TierOut,
    TierProgramOut,
    TierStatsOut,
)

Days = Annotated[int, QueryParameter(ge=1, le=366, description="How many days back.")]


async def _program_out(services: ServicesDep, principal: PrincipalDep) -> TierProgramOut:
    async with services.db.read() as session:
        program = await tiers_repo.load_program(session, principal.brand.id) or TierProgram()
        counts = await tiers_repo.distribution(session, brand_id=principal.brand.id)
    return TierProgramOut(
        qualification=program.qualification,
        tiers=[TierOut(tier=t, rank=i, members=counts.get(t.key, 0)) for i, t in enumerate(program.tiers)],
    )


async def _tier_out(services: ServicesDep, principal: PrincipalDep, key: str) -> TierOut:
    out = await _program_out(services, principal)
    found = next((t for t in out.tiers if t.tier.key == key), None)
    if found is None:
        raise NotFound(f"no tier {key!r} in this brand", field="key")
    return found


class TiersController(Controller):
    """The brand's tier definitions (secret key)."""

    path = "/v1/tiers"
    tags = ("tiers",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get("/", summary="List tiers")
    async def list_tiers(self, services: ServicesDep, principal: PrincipalDep) -> TierProgramOut:
        """The tiers, lowest first, with members per tier, and the qualification."""
        return await _program_out(services, principal)

    @get("/{key:str}", summary="Get a tier")
    async def get_tier(self, key: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> TierOut:
        """One tier; 404 when the brand has none called ``key``."""
        return await _tier_out(services, principal, key)

    @put("/{key:str}", summary="Create or replace a tier", responses=answers(201, TierOut, "The tier was created"))
    async def put_tier(
        self, key: FromPath[str], data: JSONBody[TierSpec], services: ServicesDep, principal: PrincipalDep
    ) -> Response[TierOut]:
        """Validated with the other tiers before it is stored (thresholds must differ). 201 when new."""
        if data.key != key:
            raise ValidationError(f"the body's key {data.key!r} differs from the path's {key!r}", field="$.key")
        brand = principal.brand
        async with services.db.write() as session:
            program = await tiers_repo.load_program(session, brand.id) or TierProgram()
            created = program.get(key) is None
            tiers = [t for t in program.tiers if t.key != key] + [data]
            updated = build_program(msgspec.structs.replace(program, tiers=tiers), path="$")
            await tiers_repo.save_program(session, brand_id=brand.id, program=updated, now=services.clock.now())
        out = await _tier_out(services, principal, key)
        return Response(out, status_code=201 if created else 200)

    @delete("/{key:str}", summary="Delete a tier")
    async def delete_tier(self, key: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> None:
        """Remove a tier from the program; members holding it keep it until their next review. 404 if unknown."""
        brand = principal.brand
        async with services.db.write() as session:
            program = await tiers_repo.load_program(session, brand.id)
            if program is None or program.get(key) is None:
                raise NotFound(f"no tier {key!r} in this brand", field="key")
            tiers = [t for t in program.tiers if t.key != key]
            updated = msgspec.structs.replace(program, tiers=tiers) if tiers else None
            await tiers_repo.save_program(session, brand_id=brand.id, program=updated, now=services.clock.now())


class TierProgramController(Controller):
    """How members qualify, the simulation of a change, statistics and the re-evaluation (secret key)."""

    path = "/v1/tier-program"
    tags = ("tiers",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get("/qualification", summary="Get the tier qualification")
    async def get_qualification(self, services: ServicesDep, principal: PrincipalDep) -> Qualification:
        """Metric, window, grace period, minimum stay."""
        return (await _program_out(services, principal)).qualification

    @put("/qualification", summary="Set the tier qualification")
    async def put_qualification(
        self, data: JSONBody[Qualification], services: ServicesDep, principal: PrincipalDep
    ) -> Qualification:
        """Replace the qualification (a new metric starts counting from now; see docs/tiers.md)."""
        brand = principal.brand
        async with services.db.write() as session:
            program = await tiers_repo.load_program(session, brand.id) or TierProgram()
            updated = build_program(msgspec.structs.replace(program, qualification=data), path="$")
            await tiers_repo.save_program(session, brand_id=brand.id, program=updated, now=services.clock.now())
        return updated.qualification

    @post("/simulations", summary="Simulate a tier change", status_code=200)
    async def simulate(
        self, data: JSONBody[SimulationIn], services: ServicesDep, principal: PrincipalDep
    ) -> SimulationOut:
        """How many members a proposed set of tiers would move, from the current windows; nothing is changed."""
        brand = principal.brand
        async with services.db.read() as session:
            program = await tiers_repo.load_program(session, brand.id) or TierProgram()
        proposed = TierProgram(qualification=data.qualification or program.qualification, tiers=data.tiers)
        report = await tiers_service.simulate_program(
            services.db, brand=brand, proposed=build_program(proposed, path="$"), now=services.clock.now()
        )
        return msgspec.convert(report, SimulationOut)

    @get("/stats", summary="Members per tier")
    async def stats(self, services: ServicesDep, principal: PrincipalDep, days: Days = 30) -> TierStatsOut:
        """Members per tier now, and at the end of each of the last ``days`` days."""
        brand = principal.brand
        async with services.db.read() as session:
            distribution = await tiers_repo.distribution(session, brand_id=brand.id)
        series = await tiers_service.members_over_time(services.db, brand=brand, now=services.clock.now(), days=days)
        return TierStatsOut(distribution=distribution, over_time=series)

    @post("/evaluations", summary="Re-evaluate tiers now", status_code=200)
    async def evaluate(self, services: ServicesDep, principal: PrincipalDep) -> EvaluationOut:
        """Run the re-evaluation job for this brand now (downgrades, renewals, overrides ended, birthdays)."""
        report = await tiers_service.evaluate(services.db, brand=principal.brand, now=services.clock.now())
        return msgspec.convert(msgspec.to_builtins(report), EvaluationOut)


class MemberTiersController(Controller):
    """A member's tier, a manual override and "choose your benefit" (secret key)."""

    path = "/v1/members"
    tags = ("tiers",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    async def _member(self, services: ServicesDep, principal: PrincipalDep, external_id: str) -> members_repo.Member:
        async with services.db.read() as session:
            return await members_repo.get_member(session, brand_id=principal.brand.id, external_id=external_id)

    @get("/{external_id:str}/tier", summary="Get a member's tier")
    async def member_tier(
        self, external_id: FromPath[str], services: ServicesDep, principal: PrincipalDep
    ) -> MemberTier:
        """Current tier, progress to the next, what keeping it takes by the review date, and the history."""
        member = await self._member(services, principal, external_id)
        return await tiers_service.member_tier(
            services.db, brand=principal.brand, member=member, now=services.clock.now()
        )

    @post("/{external_id:str}/tier", summary="Override a member's tier", status_code=200)
    async def override(
        self, external_id: FromPath[str], data: JSONBody[OverrideIn], services: ServicesDep, principal: PrincipalDep
    ) -> MemberTier:
        """Hold ``tier`` until ``until`` with a reason (kept in the history); then the job re-evaluates."""
        member = await self._member(services, principal, external_id)
        now = services.clock.now()
        await tiers_service.override(
            services.db,
            brand=principal.brand,
            member=member,
            tier=data.tier,
            until=data.until,
            reason=data.reason,
            now=now,
        )
        return await tiers_service.member_tier(services.db, brand=principal.brand, member=member, now=now)

    @post("/{external_id:str}/tier/choice", summary="Choose a tier benefit", status_code=201)
    async def choose(
        self, external_id: FromPath[str], data: JSONBody[ChoiceIn], services: ServicesDep, principal: PrincipalDep
    ) -> ChoiceOut:
        """Pick one of the current tier's ``choices``, once per tier (409 the second time)."""
        member = await self._member(services, principal, external_id)
        tier = await tiers_service.choose(
            services.db, brand=principal.brand, member=member, reward=data.reward, now=services.clock.now()
        )
        return ChoiceOut(member=member.external_id, tier=tier, reward=data.reward)


routes = [TiersController, TierProgramController, MemberTiersController]
