"""Tier pages: the member's tier in the portal, and the console's tier distribution and simulation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from engine.errors import QuestlineError
from tiers import repository as tiers_repo
from tiers import service as tiers_service
from tiers.models import TierProgram, TierSpec
from web.i18n import Translator
from web.i18n.localized import Localized
from web.pages import views
from web.pages.portal import (
    PortalSignInRequired,
    PortalViewerDep,
    _domain_error,
    _render,
    _sign_in_required,
    provide_portal_viewer,
)

CURRENCIES = {"€", "$", "£"}


@dataclass(frozen=True, slots=True)
class TierCard:
    """A tier as a page shows it."""

    key: str
    name: Localized
    color: str
    icon: str
    threshold: str
    multiplier: float
    perks: list[Localized]
    current: bool
    reached: bool


def localized(names: dict[str, str], lang: str, fallback: str) -> Localized:
    """The brand's text in ``lang`` (or English, or any), with the language it is written in."""
    for candidate in (lang, "en"):
        if names.get(candidate):
            return Localized(text=names[candidate], lang=candidate)
    for code, text in names.items():
        if text:
            return Localized(text=text, lang=code)
    return Localized(text=fallback)


def amount(t: Translator, value: float, unit: str) -> str:
    """A metric amount with its unit: ``€120``, ``300 points``, ``4 visits``."""
    number = t.number(round(value, 2))
    if unit in CURRENCIES:
        return f"{unit}{number}"
    if unit == "points":
        return t("%(amount)s points", amount=number)
    return f"{number} {unit}"


def cards(program: TierProgram, t: Translator, current: str | None) -> list[TierCard]:
    """Every tier of the program, lowest first, marked current / reached."""
    rank = program.rank(current)
    unit = program.qualification.unit
    return [
        TierCard(
            key=tier.key,
            name=localized(tier.name, t.lang, tier.key),
            color=tier.color,
            icon=tier.icon,
            threshold=amount(t, tier.threshold, unit),
            multiplier=tier.multiplier,
            perks=[localized(p, t.lang, "") for p in tier.perks],
            current=tier.key == current,
            reached=index <= rank,
        )
        for index, tier in enumerate(program.tiers)
    ]


class PortalTierController(Controller):
    """The member's tier page: current tier, benefits, progress to the next tier, history."""

    path = "/portal/tier"
    include_in_schema = False
    dependencies = {"viewer": Provide(provide_portal_viewer)}  # noqa: RUF012
    exception_handlers = {  # noqa: RUF012
        PortalSignInRequired: _sign_in_required,
        QuestlineError: _domain_error,
    }

    @get("/", name="portal:tier")
    async def tier(self, request: Request[Any, Any, Any], viewer: PortalViewerDep) -> Template:
        """Current tier with its benefits and choices, the progress bar, what keeping it takes, and the history."""
        services = viewer.services
        balance = await views.balance(services, viewer.brand, viewer.member.id)
        async with services.db.read() as session:
            program = await tiers_repo.load_program(session, viewer.brand.id) or TierProgram()
        state = await tiers_service.member_tier(services.db, brand=viewer.brand, member=viewer.member, now=viewer.now)
        t = viewer.t
        unit = program.qualification.unit
        current: TierSpec | None = program.get(state.tier)
        upcoming = program.get(state.next_tier)
        names = {tier.key: localized(tier.name, t.lang, tier.key) for tier in program.tiers}
        return _render(
            viewer,
            request,
            "portal/tier.html.jinja2",
            active="tier",
            balance=balance,
            state=state,
            tiers=cards(program, t, state.tier),
            current=current,
            current_name=names.get(state.tier or ""),
            next_name=names.get(state.next_tier or ""),
            to_next=amount(t, state.to_next, unit),
            keep_needed=amount(t, state.keep_needed, unit),
            value=amount(t, state.value, unit),
            next_threshold=upcoming.threshold if upcoming else 0,
            names=names,
            choices=current.choices if current else [],
            timedelta_second=timedelta(microseconds=1),
        )

    @post("/choice", status_code=303)
    async def choose(
        self,
        viewer: PortalViewerDep,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Redirect:
        """Choose your benefit: record the member's pick among their tier's choices (once)."""
        await tiers_service.choose(
            viewer.services.db, brand=viewer.brand, member=viewer.member, reward=data.get("reward", ""), now=viewer.now
        )
        return Redirect("/portal/tier", status_code=303)
