"""Console liability: outstanding available and pending points, expected expiries per month, redemption rate."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal

from litestar import Controller, Request, get
from litestar.params import QueryParameter
from litestar.response import Template

from engine.periods import local_midnight
from rewards.liability import liability, monthly_rates
from web.pages import charts
from web.pages.console.base import CONSOLE_DEPENDENCIES, CONSOLE_EXCEPTION_HANDLERS, ConsoleViewerDep, render

Days = Literal[30, 90, 180, 365]


class LiabilityPageController(Controller):
    """``/console/liability``: what the program owes its members, and how much of it is redeemed."""

    path = "/console/liability"
    include_in_schema = False
    dependencies = CONSOLE_DEPENDENCIES
    exception_handlers = CONSOLE_EXCEPTION_HANDLERS

    @get("/", name="console:liability")
    async def liability_page(
        self,
        request: Request[Any, Any, Any],
        viewer: ConsoleViewerDep,
        days: Annotated[Days, QueryParameter(description="Period in days, ending today.")] = 90,
        start_day: Annotated[date | None, QueryParameter(name="from", description="First day (with `to`).")] = None,
        end_day: Annotated[date | None, QueryParameter(name="to", description="Last day (with `from`).")] = None,
    ) -> Template:
        """Outstanding points now; over the chosen period, flows and the redemption rate per month."""
        t, brand = viewer.t, viewer.brand
        tz = brand.tz
        today = viewer.now.astimezone(tz).date()
        last = end_day or today
        first = start_day if start_day is not None and start_day <= last else last - timedelta(days=days - 1)
        first = max(first, last - timedelta(days=3 * 366))
        start, end = local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)
        async with viewer.services.db.replica() as session:  # a report: the read replica when there is one
            figures = await liability(session, brand, start=start, end=end, now=viewer.now)
            months = await monthly_rates(session, brand, start=start, end=end)
        span = t("%(start)s – %(end)s", start=t.date(first), end=t.date(last))
        month_labels = [m.month for m in months]
        expiry_labels = [e.month for e in figures.expiring[:12]]
        drawn = {
            "expiries": charts.column_chart(
                "c-expiries",
                title=t("Expected expiries per month"),
                desc=t("Points that will expire each month unless spent first."),
                labels=expiry_labels,
                values=[e.points for e in figures.expiring[:12]],
                css="chart-bar alt",
            ),
            "rate": charts.line_chart(
                "c-rate",
                title=t("Redemption rate per month"),
                desc=span,
                labels=month_labels,
                values=[round(m.redemption_rate * 100, 1) for m in months],
            ),
            "flows": charts.bar_list(
                "c-flows",
                title=t("Points in the period"),
                desc=span,
                labels=[t("Earned"), t("Redeemed"), t("Expired"), t("Cancelled")],
                values=[figures.earned, figures.redeemed, figures.expired, figures.cancelled],
            ),
        }
        return render(
            viewer,
            "console/liability.html.jinja2",
            active="liability",
            request=request,
            figures=figures,
            months=months,
            drawn=drawn,
            span=span,
            days=days if start_day is None else 0,
            first=first,
            last=last,
        )
