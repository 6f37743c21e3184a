"""Segments and offers over HTTP (secret key): definitions, member counts, explanations, reports, activation."""

from __future__ import annotations

from litestar import Controller, Response, delete, get, post, put
from litestar.di import Provide
from litestar.params import FromPath, JSONBody

from engine import members as members_repo
from engine.errors import NotFound, ValidationError
from segments import offer_repository as offers_repo
from segments import repository as segments_repo
from segments import service
from segments.models import SegmentDef, validate
from segments.offers import OfferDef
from segments.offers import validate as validate_offer
from segments.service import MemberOffer
from web.deps import PrincipalDep, ServicesDep, provide_secret_principal
from web.openapi import answers
from web.schemas.segments import (
    ClauseOut,
    ExplanationOut,
    OfferOut,
    OfferReportOut,
    OffersOut,
    SampleMember,
    SegmentOut,
    SegmentsOut,
)


async def segment_out(services: ServicesDep, principal: PrincipalDep, slug: str) -> SegmentOut:
    """The segment with its live count and a sample (404 when unknown)."""
    brand = principal.brand
    async with services.db.read() as session:
        segment = await service.segment(session, brand=brand, slug=slug)
        census = await segments_repo.census(
            session, brand_id=brand.id, segment=segment, now=services.clock.now(), sources=services.segments.sources
        )
    sample = [SampleMember(external_id=m.external_id, display_name=m.display_name) for m in census.sample]
    return SegmentOut(segment=segment, members=census.count, sample=sample)


class SegmentsController(Controller):
    """The brand's segments."""

    path = "/v1/segments"
    tags = ("segments",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get("/", summary="List segments")
    async def list_segments(self, services: ServicesDep, principal: PrincipalDep) -> SegmentsOut:
        """Every segment's definition, by slug."""
        async with services.db.read() as session:
            return SegmentsOut(segments=await segments_repo.load_segments(session, principal.brand.id))

    @get("/{slug:str}", summary="Get a segment with its member count")
    async def get_segment(self, slug: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> SegmentOut:
        """The definition, how many members are in it now, and a sample of them."""
        return await segment_out(services, principal, slug)

    @put(
        "/{slug:str}",
        summary="Create or replace a segment",
        responses=answers(201, SegmentOut, "The segment was created"),
    )
    async def put_segment(
        self, slug: FromPath[str], data: JSONBody[SegmentDef], services: ServicesDep, principal: PrincipalDep
    ) -> Response[SegmentOut]:
        """Validated (one operator per clause, each metric's fields) before it is stored. 201 when new."""
        if data.slug != slug:
            raise ValidationError(f"the body's slug {data.slug!r} differs from the path's {slug!r}", field="$.slug")
        validate(data)
        async with services.db.write() as session:
            created = await segments_repo.save_segment(
                session, brand_id=principal.brand.id, segment=data, now=services.clock.now()
            )
        return Response(await segment_out(services, principal, slug), status_code=201 if created else 200)

    @delete("/{slug:str}", summary="Delete a segment")
    async def delete_segment(self, slug: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> None:
        """Remove the segment; a filter or offer naming it then matches nobody. 404 if unknown."""
        async with services.db.write() as session:
            if not await segments_repo.delete_segment(session, brand_id=principal.brand.id, slug=slug):
                raise NotFound(f"no segment {slug!r} in this brand", field="slug")

    @get("/{slug:str}/members/{external_id:str}", summary="Explain a member's membership")
    async def explain(
        self, slug: FromPath[str], external_id: FromPath[str], services: ServicesDep, principal: PrincipalDep
    ) -> ExplanationOut:
        """Whether the member is in the segment now, with each clause, the member's value and whether it held."""
        async with services.db.read() as session:
            member, why = await service.explain_member(
                session, brand=principal.brand, segments=services.segments, slug=slug, external_id=external_id,
                now=services.clock.now(),
            )  # fmt: skip
        return ExplanationOut(
            segment=slug, member=member.external_id, in_segment=why.member, match=why.match,
            clauses=[ClauseOut(clause=c.clause, value=c.value, held=c.held) for c in why.clauses],
        )  # fmt: skip


async def _offer_out(services: ServicesDep, principal: PrincipalDep, key: str) -> OfferOut:
    async with services.db.read() as session:
        offers = await offers_repo.load_offers(session, principal.brand.id)
    found = next((o for o in offers if o.spec.key == key), None)
    if found is None:
        raise NotFound(f"no offer {key!r} in this brand", field="key")
    return OfferOut(offer=found.spec, given=found.given)


class OffersController(Controller):
    """The brand's personalised offers and their experiment reports."""

    path = "/v1/offers"
    tags = ("offers",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get("/", summary="List offers")
    async def list_offers(self, services: ServicesDep, principal: PrincipalDep) -> OffersOut:
        """Every offer with the points it has given."""
        async with services.db.read() as session:
            offers = await offers_repo.load_offers(session, principal.brand.id)
        return OffersOut(offers=[OfferOut(offer=o.spec, given=o.given) for o in offers])

    @get("/{key:str}", summary="Get an offer")
    async def get_offer(self, key: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> OfferOut:
        """One offer; 404 when unknown."""
        return await _offer_out(services, principal, key)

    @put("/{key:str}", summary="Create or replace an offer", responses=answers(201, OfferOut, "The offer was created"))
    async def put_offer(
        self, key: FromPath[str], data: JSONBody[OfferDef], services: ServicesDep, principal: PrincipalDep
    ) -> Response[OfferOut]:
        """Validated (window, target, experiment arms adding up to 100 with one control). 201 when new.

        A budget below what the offer already gave answers 409.
        """
        if data.key != key:
            raise ValidationError(f"the body's key {data.key!r} differs from the path's {key!r}", field="$.key")
        validate_offer(data)
        async with services.db.write() as session:
            created = await offers_repo.save_offer(
                session, brand_id=principal.brand.id, offer=data, now=services.clock.now()
            )
        return Response(await _offer_out(services, principal, key), status_code=201 if created else 200)

    @delete("/{key:str}", summary="Delete an offer")
    async def delete_offer(self, key: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> None:
        """Remove the offer with its members' state and experiment results. 404 if unknown."""
        async with services.db.write() as session:
            if not await offers_repo.delete_offer(session, brand_id=principal.brand.id, key=key):
                raise NotFound(f"no offer {key!r} in this brand", field="key")

    @get("/{key:str}/report", summary="Report an offer's experiment")
    async def report(self, key: FromPath[str], services: ServicesDep, principal: PrincipalDep) -> OfferReportOut:
        """Per arm: members, participation, points, events per member, uplift against control with a 95 % CI."""
        async with services.db.read() as session:
            found = await service.offer_report(session, brand=principal.brand, key=key)
        return OfferReportOut(offer=found.offer, budget=found.budget, given=found.given, arms=found.arms)


class MemberOffersController(Controller):
    """A member's personalised offers (what the brand's own app shows) and activation of opt-in ones."""

    path = "/v1/members"
    tags = ("offers",)
    dependencies = {"principal": Provide(provide_secret_principal)}  # noqa: RUF012

    @get("/{external_id:str}/offers", summary="List a member's offers")
    async def member_offers(
        self, external_id: FromPath[str], services: ServicesDep, principal: PrincipalDep
    ) -> list[MemberOffer]:
        """The live offers that target the member, with whether each applies now and the uses left."""
        brand = principal.brand
        async with services.db.read() as session:
            member = await members_repo.get_member(session, brand_id=brand.id, external_id=external_id)
            return await service.member_offers(
                session, brand=brand, segments=services.segments, member_id=member.id,
                external_id=member.external_id, locale=member.locale, now=services.clock.now(),
            )  # fmt: skip

    @post("/{external_id:str}/offers/{key:str}/activation", summary="Activate an opt-in offer", status_code=200)
    async def activate(
        self, external_id: FromPath[str], key: FromPath[str], services: ServicesDep, principal: PrincipalDep
    ) -> list[MemberOffer]:
        """Activate ``key`` for the member (again: no change); 404 when it is not theirs, 409 when not opt-in."""
        brand = principal.brand
        now = services.clock.now()
        async with services.db.write() as session:
            member = await members_repo.get_member(session, brand_id=brand.id, external_id=external_id)
            await service.activate(
                session, brand=brand, segments=services.segments, member_id=member.id,
                external_id=member.external_id, key=key, now=now,
            )  # fmt: skip
            return await service.member_offers(
                session, brand=brand, segments=services.segments, member_id=member.id,
                external_id=member.external_id, locale=member.locale, now=now,
            )  # fmt: skip


routes = [SegmentsController, OffersController, MemberOffersController]
