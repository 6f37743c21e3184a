"""The console dashboard: figures and server-side SVG charts over the last days."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from litestar import Controller, Request, get
from litestar.params import QueryParameter
from litestar.response import Template

from engine.periods import local_midnight
from web.pages import charts, stats
from web.pages.console.base import CONSOLE_DEPENDENCIES, CONSOLE_EXCEPTION_HANDLERS, ConsoleViewerDep, render

Days = Literal[7, 14, 30, 90]


class DashboardController(Controller):
    """``/console``: how the program is doing."""

    path = "/console"
    include_in_schema = False
    dependencies = CONSOLE_DEPENDENCIES
    exception_handlers = CONSOLE_EXCEPTION_HANDLERS

    @get("/", name="console:dashboard")
    async def dashboard(
        self,
        request: Request[Any, Any, Any],
        viewer: ConsoleViewerDep,
        days: Annotated[Days, QueryParameter(description="Range in days.")] = 14,
    ) -> Template:
        """Events, active members, points issued per day; completions per challenge; badge rarity."""
        t, brand, db = viewer.t, viewer.brand, viewer.services.db
        overview = await stats.overview(db, brand_id=brand.id, tz=brand.tz, now=viewer.now, days=days)
        since = local_midnight(overview.days[0], brand.tz)
        done = await stats.completions(db, brand_id=brand.id, since=since)
        rare = await stats.rarity(db, brand_id=brand.id)
        labels = [t.short_date(d) for d in overview.days]
        span = t("%(start)s – %(end)s", start=t.date(overview.days[0]), end=t.date(overview.days[-1]))
        figures = {
            "events": charts.column_chart(
                "c-events",
                title=t("Events per day"),
                desc=span,
                labels=labels,
                values=[p.value for p in overview.events],
            ),
            "active": charts.line_chart(
                "c-active",
                title=t("Active members per day"),
                desc=span,
                labels=labels,
                values=[p.value for p in overview.active_members],
            ),
            "points": charts.column_chart(
                "c-points",
                title=t("Points issued per day"),
                desc=span,
                labels=labels,
                values=[p.value for p in overview.points_issued],
                css="chart-bar alt",
            ),
            "completions": charts.bar_list(
                "c-completions",
                title=t("Completions per challenge"),
                desc=span,
                labels=[c.label for c in done[:10]],
                values=[c.value for c in done[:10]],
            ),
            "rarity": charts.bar_list(
                "c-rarity",
                title=t("Badge rarity"),
                desc=t("Share of members holding each badge, rarest first."),
                labels=[r.label for r in rare[:10]],
                values=[r.value for r in rare[:10]],
                suffix="%",
                max_value=100.0,
            ),
        }
        return render(
            viewer,
            "console/dashboard.html.jinja2",
            active="dashboard",
            request=request,
            days=days,
            overview=overview,
            completions=done,
            rarity=rare,
            figures=figures,
            span=span,
            previous_start=overview.days[0] - timedelta(days=days),
        )
