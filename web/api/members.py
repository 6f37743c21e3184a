"""Members and their points: enrolment, lookup, balance and history, manual adjustments."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter

from engine import audit, point_views, points
from engine import members as members_repo
from engine.members import Member, MemberIn
from engine.points import Adjustment, PointsSummary
from web.deps import PrincipalDep, ServicesDep, provide_secret_principal
from web.exports import build_export, export_page
from web.hygiene import MAX_ID
from web.openapi import answers
from web.schemas.members import MemberExport, MemberOut
from web.schemas.rewards import MemberPoints


def _member_out(member: Member, balance: int) -> MemberOut:
    return MemberOut(
        external_id=member.external_id,
        display_name=member.display_name,
        locale=member.locale,
        attributes=member.attributes,
        created_at=member.created_at,
        points=balance,
    )


class MembersController(Controller):
    """Enrolment, lookup and points of members (secret key)."""

    path = "/v1/members"
    tags = ("members",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @post(
        "/",
        summary="Enrol or update a member",
        status_code=201,
        responses=answers(200, MemberOut, "The member was updated"),
    )
    async def enrol(
        self, data: JSONBody[MemberIn], services: ServicesDep, principal: PrincipalDep
    ) -> Response[MemberOut]:
        """Create the member (201) or update the fields given (200). Members are also created on their first event."""
        member, created = await members_repo.upsert_member(
            services.db, brand_id=principal.brand.id, data=data, now=services.clock.now()
        )
        if not created:
            for hook in services.member_update_hooks:
                await hook(principal.brand, member.id)
        async with services.db.read() as session:
            balance = await points.balance(session, brand_id=principal.brand.id, member_id=member.id)
        out = MemberOut(
            external_id=member.external_id,
            display_name=member.display_name,
            locale=member.locale,
            attributes=member.attributes,
            created_at=member.created_at,
            points=balance,
        )
        return Response(out, status_code=201 if created else 200)

    @get("/{external_id:str}", summary="Look up a member")
    async def lookup(self, external_id: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> MemberOut:
        """The member and their balance; 404 when the brand has no such member."""
        async with services.db.read() as session:
            member = await members_repo.get_member(session, brand_id=principal.brand.id, external_id=external_id)
            balance = await points.balance(session, brand_id=principal.brand.id, member_id=member.id)
        return MemberOut(
            external_id=member.external_id,
            display_name=member.display_name,
            locale=member.locale,
            attributes=member.attributes,
            created_at=member.created_at,
            points=balance,
        )

    @get("/{external_id:str}/points", summary="Points balance and history")
    async def member_points(
        self,
        external_id: FromPath[str],
        services: ServicesDep,
        principal: PrincipalDep,
        limit: Annotated[int, QueryParameter(ge=1, le=200, description="Entries per page.")] = 50,
        before: Annotated[
            int | None, QueryParameter(ge=1, le=MAX_ID, description="Cursor: entries older than this id.")
        ] = None,
    ) -> MemberPoints:
        """Available (also as ``balance``), pending, expiring, lifetime figures and a page of entries.

        Exact at this instant: pending points with their release dates, the next expiries with their dates,
        lifetime earned and spent; the ledger entries newest first.
        """
        async with services.db.read() as session:
            member = await members_repo.get_member(session, brand_id=principal.brand.id, external_id=external_id)
            view = await point_views.points_view(
                session, brand=principal.brand, member_id=member.id, now=services.clock.now()
            )
            entries, next_before = await points.history(
                session, brand_id=principal.brand.id, member_id=member.id, limit=limit, before=before
            )
        return MemberPoints(
            member=member.external_id,
            balance=view.available,
            available=view.available,
            pending=view.pending,
            pending_lots=view.pending_lots,
            expiring=view.expiring,
            lifetime_earned=view.lifetime_earned,
            lifetime_spent=view.lifetime_spent,
            as_of=view.as_of,
            entries=entries,
            next_before=next_before,
        )

    @post("/{external_id:str}/points/adjustments", summary="Adjust points with a reason", status_code=201)
    async def adjust(
        self,
        external_id: FromPath[str],
        data: JSONBody[Adjustment],
        services: ServicesDep,
        principal: PrincipalDep,
    ) -> PointsSummary:
        """Append a correction to the ledger (never edits an entry); answers the new balance."""
        brand = principal.brand
        now = services.clock.now()
        async with services.db.write() as session:
            member = await members_repo.get_member(session, brand_id=brand.id, external_id=external_id)
            await points.post_entry(
                session,
                brand_id=brand.id,
                member_id=member.id,
                points=data.points,
                source="adjustment",
                key="manual",
                reason=data.reason,
                occurred_at=now,
                tz=brand.tz,
                now=now,
            )
            await audit.record(
                session, brand_id=brand.id, actor=audit.key_actor(principal.prefix), action="points.adjusted",
                at=now, target=f"member #{member.id}", details={"points": data.points, "reason": data.reason},
            )  # fmt: skip
        async with services.db.read() as session:
            balance = await points.balance(session, brand_id=brand.id, member_id=member.id)
            entries, next_before = await points.history(
                session, brand_id=brand.id, member_id=member.id, limit=10, before=None
            )
        return PointsSummary(member=member.external_id, balance=balance, entries=entries, next_before=next_before)

    @delete("/{external_id:str}", summary="Erase a member (GDPR Art. 17)", status_code=204)
    async def erase(self, external_id: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> None:
        """Remove the member's identity everywhere (boards and archives included); ledger entries stay pseudonymous."""
        brand = principal.brand
        async with services.db.write() as session:
            member = await members_repo.erase_member(
                session, brand_id=brand.id, external_id=external_id, now=services.clock.now()
            )
            for hook in services.erasure_hooks:
                await hook(session, brand, member.id)
            await audit.record(
                session, brand_id=brand.id, actor=audit.key_actor(principal.prefix), action="member.erased",
                at=services.clock.now(), target=f"member #{member.id}",
            )  # fmt: skip

    @get(
        "/{external_id:str}/export",
        summary="Export a member's data (GDPR Art. 15 and 20)",
        responses={200: ResponseSpec(data_container=MemberExport, description="JSON, or HTML with ?format=html")},
    )
    async def export(
        self,
        request: Request[Any, Any, Any],
        external_id: FromPath[str],
        services: ServicesDep,
        principal: PrincipalDep,
        format: Annotated[
            Literal["json", "html"], QueryParameter(description="`json` (default) or `html`: a readable page.")
        ] = "json",
    ) -> Response[Any]:
        """Identity, points ledger, events and each domain's data, as JSON or a readable HTML page.

        Sections: points and lots, badges, boards and archives with the board preference, rewards, held
        events and challenges.
        """
        found = await build_export(services, principal.brand, external_id, from_replica=True)
        if format == "html":
            return export_page(request, principal.brand, found)
        return Response(found)
