"""HTTP endpoints of the ``challenges`` package (its processor and hooks are wired in ``web/wiring.py``).

- ``/v1/campaigns`` and ``/v1/challenges``: per-resource definitions (each change is a new program version);
- ``/v1/members/{id}/challenges``: a member's challenges with progress, and the explain view;
- ``/v1/members/{id}/campaigns/{key}/opt-in``: opt-in for campaigns that ask for one;
- ``/v1/program``: the whole program document (see :mod:`web.program`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Response, delete, get, post, put
from litestar.di import Provide
from litestar.params import FromPath, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from challenges import backfill, service, views
from challenges import explain as explain_views
from challenges import versions as challenge_versions
from challenges.config import CampaignSpec, ChallengeSpec, build_campaign, decode
from challenges.rules import campaign_state
from engine import members as members_repo
from engine.errors import NotFound, ValidationError
from engine.tenants import Brand
from web.deps import PrincipalDep, Services, ServicesDep, provide_secret_principal
from web.openapi import answers
from web.program import ProgramController, parse_instant, record_change
from web.schemas.challenges import CampaignOut, CampaignSaved, ChallengeOut, ChallengeSaved


async def _definitions(services: Services, brand: Brand) -> tuple[list[CampaignSpec], list[ChallengeSpec]]:
    async with services.db.read() as session:
        campaigns, challenges = await service.export_definitions(session, brand_id=brand.id)
    return (
        [decode(c, CampaignSpec, path="$") for c in campaigns],
        [decode(c, ChallengeSpec, path="$") for c in challenges],
    )


def _campaign_out(spec: CampaignSpec, challenges: list[ChallengeSpec], *, brand: Brand, now: datetime) -> CampaignOut:
    compiled = build_campaign(spec, tz=brand.tz)
    return CampaignOut(
        campaign=spec,
        state=campaign_state(compiled, now),
        starts_at=compiled.starts_at,
        ends_at=compiled.ends_at,
        challenges=[c.key for c in challenges if c.campaign == spec.key],
    )


async def _one_campaign(services: Services, brand: Brand, key: str) -> CampaignOut:
    campaigns, challenges = await _definitions(services, brand)
    for spec in campaigns:
        if spec.key == key:
            return _campaign_out(spec, challenges, brand=brand, now=services.clock.now())
    raise NotFound(f"no campaign {key!r}", field="key")


def _challenge_outs(
    campaigns: list[CampaignSpec], challenges: list[ChallengeSpec], *, brand: Brand, now: datetime
) -> list[ChallengeOut]:
    states = {c.key: campaign_state(build_campaign(c, tz=brand.tz), now) for c in campaigns}
    return [ChallengeOut(challenge=c, state=states[c.campaign]) for c in challenges if c.campaign in states]


async def _one_challenge(services: Services, brand: Brand, key: str) -> ChallengeOut:
    campaigns, challenges = await _definitions(services, brand)
    found = [c for c in challenges if c.key == key]
    if not found:
        raise NotFound(f"no challenge {key!r}", field="key")
    return _challenge_outs(campaigns, found, brand=brand, now=services.clock.now())[0]


def _same_key(body_key: str, path_key: str) -> None:
    if body_key != path_key:
        raise ValidationError(f"the body's key {body_key!r} differs from the path's {path_key!r}", field="$.key")


async def _change_program(
    services: Services,
    brand: Brand,
    *,
    source: str,
    now: datetime,
    change: Callable[[AsyncSession], Awaitable[list[str]]],
) -> tuple[list[str], int | None]:
    """Make ``change`` under the program lock and record the new program version; returns the changes and it."""
    async with services.db.write() as session:
        await challenge_versions.lock_program(session, db=services.db, brand_id=brand.id)
        changes = await change(session)
        version = await record_change(session, brand=brand, changes=changes, source=source, now=now)
    return changes, version


class CampaignsController(Controller):
    """Campaigns: window, status (draft, live, paused), eligibility, opt-in (secret key)."""

    path = "/v1/campaigns"
    tags = ("campaigns",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get("/", summary="List campaigns")
    async def list_campaigns(self, services: ServicesDep, principal: PrincipalDep) -> list[CampaignOut]:
        """Every live (not archived) campaign with its state now."""
        campaigns, challenges = await _definitions(services, principal.brand)
        now = services.clock.now()
        return [_campaign_out(c, challenges, brand=principal.brand, now=now) for c in campaigns]

    @get("/{key:str}", summary="Get a campaign")
    async def get_campaign(self, key: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> CampaignOut:
        """One campaign; 404 when there is none (or it was archived)."""
        return await _one_campaign(services, principal.brand, key)

    @put("/{key:str}", summary="Create or replace a campaign")
    async def put_campaign(
        self, key: FromPath[str], data: JSONBody[CampaignSpec], services: ServicesDep, principal: PrincipalDep
    ) -> CampaignSaved:
        """Validated first: a mistake answers 422 naming its path and nothing changes."""
        _same_key(data.key, key)
        brand, now = principal.brand, services.clock.now()
        changes, version = await _change_program(
            services,
            brand,
            source="api:campaigns",
            now=now,
            change=lambda session: service.apply_definitions(
                session, brand=brand, campaigns=[data], challenges=None, now=now, replace=False
            ),
        )
        await backfill.run_pending(services.db, brand=brand, now=now)
        return CampaignSaved(campaign=await _one_campaign(services, brand, key), changes=changes, version=version)

    @delete("/{key:str}", summary="Archive a campaign")
    async def delete_campaign(self, key: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> None:
        """Archive it (409 while challenges still belong to it); opt-ins are kept should it come back."""
        brand, now = principal.brand, services.clock.now()
        await _change_program(
            services,
            brand,
            source="api:campaigns",
            now=now,
            change=lambda session: service.archive_campaign(session, brand=brand, key=key, now=now),
        )

    @post("/{key:str}/pause", summary="Pause a campaign", status_code=200)
    async def pause(self, key: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> CampaignSaved:
        """Events received while a campaign is paused do not count for its challenges."""
        return await self._status(services, principal.brand, key, "paused")

    @post("/{key:str}/resume", summary="Resume (publish) a campaign", status_code=200)
    async def resume(self, key: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> CampaignSaved:
        """Set the campaign live again (also publishes a draft)."""
        return await self._status(services, principal.brand, key, "live")

    async def _status(self, services: Services, brand: Brand, key: str, status: Any) -> CampaignSaved:
        now = services.clock.now()
        changes, version = await _change_program(
            services,
            brand,
            source="api:campaigns",
            now=now,
            change=lambda session: service.set_campaign_status(session, brand=brand, key=key, status=status, now=now),
        )
        await backfill.run_pending(services.db, brand=brand, now=now)
        return CampaignSaved(campaign=await _one_campaign(services, brand, key), changes=changes, version=version)


class ChallengesController(Controller):
    """Challenge definitions: rule, recurrence, limits, rewards (secret key)."""

    path = "/v1/challenges"
    tags = ("challenges",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get("/", summary="List challenges")
    async def list_challenges(
        self,
        services: ServicesDep,
        principal: PrincipalDep,
        campaign: Annotated[str | None, QueryParameter(max_length=64, description="Only this campaign's.")] = None,
    ) -> list[ChallengeOut]:
        """Every live (not archived) challenge in program order."""
        campaigns, challenges = await _definitions(services, principal.brand)
        chosen = [c for c in challenges if campaign is None or c.campaign == campaign]
        return _challenge_outs(campaigns, chosen, brand=principal.brand, now=services.clock.now())

    @get("/{key:str}", summary="Get a challenge")
    async def get_challenge(self, key: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> ChallengeOut:
        """One challenge; 404 when there is none (or it was archived)."""
        return await _one_challenge(services, principal.brand, key)

    @put("/{key:str}", summary="Create or replace a challenge")
    async def put_challenge(
        self, key: FromPath[str], data: JSONBody[ChallengeSpec], services: ServicesDep, principal: PrincipalDep
    ) -> ChallengeSaved:
        """Validated first (422 naming the path, nothing changed). Changing a running challenge keeps progress."""
        _same_key(data.key, key)
        brand, now = principal.brand, services.clock.now()
        changes, version = await _change_program(
            services,
            brand,
            source="api:challenges",
            now=now,
            change=lambda session: service.apply_definitions(
                session, brand=brand, campaigns=None, challenges=[data], now=now, replace=False
            ),
        )
        reports = await backfill.run_pending(services.db, brand=brand, now=now)
        return ChallengeSaved(
            challenge=await _one_challenge(services, brand, key), changes=changes, version=version, backfills=reports
        )

    @delete("/{key:str}", summary="Archive a challenge")
    async def delete_challenge(self, key: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> None:
        """It stops counting and leaves the program; members' progress is kept should it come back."""
        brand, now = principal.brand, services.clock.now()
        await _change_program(
            services,
            brand,
            source="api:challenges",
            now=now,
            change=lambda session: service.archive_challenge(session, brand=brand, key=key, now=now),
        )

    @post("/{key:str}/backfill", summary="Backfill a challenge from the event log", status_code=200)
    async def run_backfill(
        self,
        key: FromPath[str],
        services: ServicesDep,
        principal: PrincipalDep,
        since: Annotated[
            str, QueryParameter(name="from", min_length=10, max_length=40, description="Date or date-time.")
        ],
    ) -> backfill.BackfillReport:
        """Recompute members' progress counting stored events since ``from`` (completions get their rewards once)."""
        brand = principal.brand
        start = parse_instant(since, brand, field="from")
        assert start is not None
        return await backfill.backfill(services.db, brand=brand, key=key, since=start, now=services.clock.now())


class MemberChallengesController(Controller):
    """A member's challenges, progress, explanations and opt-ins (secret key)."""

    path = "/v1/members/{external_id:str}"
    tags = ("members", "challenges")
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get("/challenges", summary="A member's challenges with progress")
    async def list_member_challenges(
        self,
        external_id: FromPath[str],
        services: ServicesDep,
        principal: PrincipalDep,
        include_ended: Annotated[
            bool, QueryParameter(description="Also ended campaigns the member did not join.")
        ] = False,
    ) -> list[views.MemberChallenge]:
        """Each challenge the member is eligible for: progress, target, percent, state, current instance, dates."""
        brand = principal.brand
        async with services.db.read() as session:
            member = await members_repo.get_member(session, brand_id=brand.id, external_id=external_id)
            return await views.member_challenges(
                session,
                brand=brand,
                member=member,
                now=services.clock.now(),
                include_ended=include_ended,
                segments=services.segments,
            )

    @get("/challenges/{key:str}", summary="One challenge with the member's progress")
    async def get_member_challenge(
        self, external_id: FromPath[str], key: FromPath[str], services: ServicesDep, principal: PrincipalDep
    ) -> views.MemberChallenge:
        """Progress of the member on one challenge (its current instance)."""
        brand = principal.brand
        async with services.db.read() as session:
            member = await members_repo.get_member(session, brand_id=brand.id, external_id=external_id)
            return await views.member_challenge(session, brand=brand, member=member, key=key, now=services.clock.now())

    @get("/challenges/{key:str}/explain", summary="Why each recent event did or did not count")
    async def explain(
        self,
        external_id: FromPath[str],
        key: FromPath[str],
        services: ServicesDep,
        principal: PrincipalDep,
        limit: Annotated[int, QueryParameter(ge=1, le=200, description="Recent events to explain.")] = 20,
    ) -> explain_views.Explanation:
        """The member's recent events, newest first, each with the reason it counted or not."""
        brand = principal.brand
        async with services.db.read() as session:
            member = await members_repo.get_member(session, brand_id=brand.id, external_id=external_id)
            return await explain_views.explain(
                session, brand=brand, member=member, key=key, now=services.clock.now(), limit=limit
            )

    @post(
        "/campaigns/{key:str}/opt-in",
        summary="Opt a member in to a campaign",
        status_code=201,
        responses=answers(200, service.OptIn, "The member had opted in already"),
    )
    async def opt_in(
        self, external_id: FromPath[str], key: FromPath[str], services: ServicesDep, principal: PrincipalDep
    ) -> Response[service.OptIn]:
        """201 on the first opt-in, 200 on a repeat (the first time is kept). Unknown members are enrolled."""
        result = await service.opt_in(
            services.db, brand=principal.brand, external_id=external_id, campaign_key=key, now=services.clock.now()
        )
        return Response(result, status_code=201 if result.created else 200)

    @post(
        "/challenges/{key:str}/opt-in",
        summary="Opt a member in to a challenge's campaign",
        status_code=201,
        responses=answers(200, service.OptIn, "The member had opted in already"),
    )
    async def opt_in_challenge(
        self, external_id: FromPath[str], key: FromPath[str], services: ServicesDep, principal: PrincipalDep
    ) -> Response[service.OptIn]:
        """The same as opting in to the campaign the challenge belongs to."""
        async with services.db.read() as session:
            spec = await service.get_challenge_spec(session, brand_id=principal.brand.id, key=key)
        result = await service.opt_in(
            services.db,
            brand=principal.brand,
            external_id=external_id,
            campaign_key=spec.campaign,
            now=services.clock.now(),
        )
        return Response(result, status_code=201 if result.created else 200)


routes: list[Any] = [CampaignsController, ChallengesController, MemberChallengesController, ProgramController]
