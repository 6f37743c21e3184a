"""Segment and offer pages: the console's segments (live counts, samples) and offer reports; the portal's "For you"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from segments import offer_repository as offers_repo
from segments import repository as segments_repo
from segments import service
from segments.experiments import ArmReport
from segments.models import SegmentDef
from segments.offers import OfferDef
from web.pages import views
from web.pages.console.base import CONSOLE_DEPENDENCIES, CONSOLE_EXCEPTION_HANDLERS, ConsoleViewerDep, render
from web.pages.portal import (
    PORTAL_DEPENDENCIES,
    PORTAL_EXCEPTION_HANDLERS,
    PortalViewerDep,
    _render,
)


@dataclass(frozen=True, slots=True)
class SegmentCard:
    """A segment as the console lists it: definition, live count and a sample of members."""

    segment: SegmentDef
    label: str
    members: int
    sample: list[segments_repo.MemberFacts]


@dataclass(frozen=True, slots=True)
class OfferCard:
    """An offer as the console lists it, with its report."""

    offer: OfferDef
    title: str
    given: int
    arms: list[ArmReport]


class ConsoleSegmentsController(Controller):
    """The console's segments (each with its live member count and a sample) and offers (with experiment reports)."""

    path = "/console"
    include_in_schema = False
    dependencies = CONSOLE_DEPENDENCIES
    exception_handlers = CONSOLE_EXCEPTION_HANDLERS

    @get("/segments")
    async def segments(self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep) -> Template:
        """Every segment with how many members are in it now and a few of them."""
        services, brand = viewer.services, viewer.brand
        cards = []
        async with services.db.read() as session:
            for segment in await segments_repo.load_segments(session, brand.id):
                census = await segments_repo.census(
                    session, brand_id=brand.id, segment=segment, now=viewer.now, sources=services.segments.sources
                )
                cards.append(
                    SegmentCard(
                        segment=segment, label=segment.label(viewer.t.lang), members=census.count,
                        sample=census.sample,
                    )
                )  # fmt: skip
        return render(viewer, "console/segments.html.jinja2", active="segments", request=request, cards=cards)

    @get("/offers")
    async def offers(self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep) -> Template:
        """Every offer with its budget and, per arm, members, participation, points and uplift against control."""
        services, brand = viewer.services, viewer.brand
        cards = []
        async with services.db.read() as session:
            for offer in await offers_repo.load_offers(session, brand.id):
                found = await service.offer_report(session, brand=brand, key=offer.spec.key)
                title = offer.spec.text(offer.spec.title, viewer.t.lang) or offer.spec.key
                cards.append(OfferCard(offer=offer.spec, title=title, given=found.given, arms=found.arms))
        return render(viewer, "console/offers.html.jinja2", active="offers", request=request, cards=cards)


class PortalOffersController(Controller):
    """The member's personalised offers ("For you"), with activation of opt-in ones."""

    path = "/portal/offers"
    include_in_schema = False
    dependencies = PORTAL_DEPENDENCIES
    exception_handlers = PORTAL_EXCEPTION_HANDLERS

    @get("/", name="portal:offers")
    async def offers(self, request: Request[Any, Any, Any], viewer: PortalViewerDep) -> Template:
        """The live offers that target the member."""
        services = viewer.services
        balance = await views.balance(services, viewer.brand, viewer.member.id)
        async with services.db.read() as session:
            offers = await service.member_offers(
                session, brand=viewer.brand, segments=services.segments, member_id=viewer.member.id,
                external_id=viewer.member.external_id, locale=viewer.t.lang, now=viewer.now,
            )  # fmt: skip
        return _render(viewer, request, "portal/offers.html.jinja2", active="offers", balance=balance, offers=offers)

    @post("/{key:str}/activate", status_code=303)
    async def activate(self, key: FromPath[str], viewer: PortalViewerDep) -> Redirect:
        """Activate an opt-in offer, then back to the list."""
        services = viewer.services
        async with services.db.write() as session:
            await service.activate(
                session, brand=viewer.brand, segments=services.segments, member_id=viewer.member.id,
                external_id=viewer.member.external_id, key=key, now=viewer.now,
            )  # fmt: skip
        return Redirect("/portal/offers", status_code=303)
