"""Tier pages: the member's tier in the portal, and the console's tier distribution and simulation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template

from engine.texts import pick
from tiers import repository as tiers_repo
from tiers import service as tiers_service
from tiers.models import TierProgram, TierSpec, build_program
from web.i18n import Translator
from web.i18n.localized import Localized
from web.pages import charts, views
from web.pages.console.base import CONSOLE_DEPENDENCIES, CONSOLE_EXCEPTION_HANDLERS, ConsoleViewerDep, done, render
from web.pages.portal import (
    PORTAL_DEPENDENCIES,
    PORTAL_EXCEPTION_HANDLERS,
    PortalViewerDep,
    _render,
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


def localized(names: str | dict[str, str], lang: str, fallback: str) -> Localized:
    """The brand's text in ``lang`` (or English, or any), with the language it is written in."""
    text, code = pick(names, lang)
    return Localized(text=text, lang=code) if text else Localized(text=fallback)


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
    dependencies = PORTAL_DEPENDENCIES
    exception_handlers = PORTAL_EXCEPTION_HANDLERS

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


FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
HISTORY_DAYS = 30


def _proposed(program: TierProgram, form: dict[str, str]) -> tuple[TierProgram, dict[str, str]]:
    """The program with the thresholds typed in the form (``threshold_<key>``), and any errors by field."""
    errors: dict[str, str] = {}
    tiers: list[TierSpec] = []
    for tier in program.tiers:
        name = f"threshold_{tier.key}"
        raw = form.get(name, "").strip().replace(",", ".")
        try:
            value = float(raw)
        except ValueError:
            errors[name] = "number"
            value = tier.threshold
        if value < 0:
            errors[name] = "number"
        tiers.append(msgspec.structs.replace(tier, threshold=max(value, 0.0)))
    return msgspec.structs.replace(program, tiers=tiers), errors


class ConsoleTiersController(Controller):
    """The console's tiers: distribution, members per tier over time, and a threshold change simulated first."""

    path = "/console/tiers"
    include_in_schema = False
    dependencies = CONSOLE_DEPENDENCIES
    exception_handlers = CONSOLE_EXCEPTION_HANDLERS

    async def _page(
        self, viewer: ConsoleViewerDep, request: Request[Any, Any, Any], *, form: dict[str, str] | None = None,
        simulation: dict[str, Any] | None = None, errors: dict[str, str] | None = None, status_code: int = 200,
    ) -> Template:  # fmt: skip
        services, t = viewer.services, viewer.t
        async with services.db.read() as session:
            program = await tiers_repo.load_program(session, viewer.brand.id) or TierProgram()
            counts = await tiers_repo.distribution(session, brand_id=viewer.brand.id)
        series = await tiers_service.members_over_time(
            services.db, brand=viewer.brand, now=viewer.now, days=HISTORY_DAYS
        )
        names = {tier.key: localized(tier.name, t.lang, tier.key).text for tier in program.tiers}
        labels = [names[k] for k in names]
        distribution = charts.bar_list(
            "tier-distribution", title=t("Members per tier"), desc=t("How many members hold each tier now."),
            labels=labels, values=[float(counts.get(k, 0)) for k in names],
        )  # fmt: skip
        days = [row["day"] for row in series]
        over_time = [
            (
                names[key],
                charts.line_chart(
                    f"tier-over-time-{key}", title=t("Members in %(tier)s", tier=names[key]),
                    desc=t("Members per day over the last %(days)s days.", days=HISTORY_DAYS),
                    labels=[d[5:] for d in days], values=[float(row["tiers"].get(key, 0)) for row in series],
                ),
            )
            for key in names
        ]  # fmt: skip
        thresholds = form or {f"threshold_{tier.key}": f"{tier.threshold:g}" for tier in program.tiers}
        return render(
            viewer, "console/tiers.html.jinja2", active="tiers", request=request, status_code=status_code,
            program=program, names=names, counts=counts, distribution=distribution, over_time=over_time,
            series=series, thresholds=thresholds, simulation=simulation,
            errors={k: t("Enter a number of 0 or more.") for k in (errors or {})},
        )  # fmt: skip

    @get("/")
    async def tiers(self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep) -> Template:
        """Distribution, members per tier over time, and the threshold form."""
        return await self._page(viewer, request)

    @post("/simulate", status_code=200)
    async def simulate(self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep, data: FormData) -> Template:
        """How many members the typed thresholds would move (nothing is changed)."""
        async with viewer.services.db.read() as session:
            program = await tiers_repo.load_program(session, viewer.brand.id) or TierProgram()
        proposed, errors = _proposed(program, data)
        if errors:
            return await self._page(viewer, request, form=data, errors=errors, status_code=422)
        report = await tiers_service.simulate_program(
            viewer.services.db, brand=viewer.brand, proposed=proposed, now=viewer.now
        )
        return await self._page(viewer, request, form=data, simulation=report)

    @post("/apply", status_code=303)
    async def apply(
        self, request: Request[Any, Any, Any], viewer: ConsoleViewerDep, data: FormData
    ) -> Template | Redirect:
        """Store the typed thresholds (after the simulation showed their effect)."""
        async with viewer.services.db.write() as session:
            program = await tiers_repo.load_program(session, viewer.brand.id) or TierProgram()
            proposed, errors = _proposed(program, data)
            if not errors:
                built = build_program(proposed)
                await tiers_repo.save_program(session, brand_id=viewer.brand.id, program=built, now=viewer.now)
        if errors:
            return await self._page(viewer, request, form=data, errors=errors, status_code=422)
        return done("/console/tiers", "saved")
