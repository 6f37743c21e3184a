"""Console: join page and QR codes, referral funnel and review queue, erasure requests, mail outbox.

The outbox is shown only when no SMTP server is configured (the embedded default keeps mails in memory).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template

from engine.mail import MemoryOutbox
from enrollment import service as enrollment
from referrals import service as referrals
from web.api.enrollment import complete_erasure
from web.pages import charts
from web.pages.console.base import CONSOLE_DEPENDENCIES, CONSOLE_EXCEPTION_HANDLERS, ConsoleViewerDep, done, render
from web.pages.join import join_url

_SOURCE = re.compile(r"^[A-Za-z0-9_.:\-]{1,60}$")


class EnrollmentPagesController(Controller):
    """How members join and refer friends, and what they asked of the brand."""

    path = "/console/enrollment"
    include_in_schema = False
    dependencies = CONSOLE_DEPENDENCIES
    exception_handlers = CONSOLE_EXCEPTION_HANDLERS

    @get("/")
    async def overview(
        self,
        request: Request[Any, Any, Any],
        viewer: ConsoleViewerDep,
        via: Annotated[str, QueryParameter(max_length=60)] = "",
    ) -> Template:
        """Join link and QR code, referral funnel, held referrals, pending erasure requests, outbox."""
        services, brand, t = viewer.services, viewer.brand, viewer.t
        source = via if _SOURCE.match(via or "") else ""
        async with services.db.read() as session:
            funnel = await referrals.funnel(session, brand_id=brand.id)
            held = await referrals.held(session, brand_id=brand.id)
            erasures = await enrollment.erasure_requests(session, brand_id=brand.id)
        steps = [
            (t("Invited"), funnel.invited),
            (t("Joined"), funnel.joined),
            (t("Qualified"), funnel.qualified),
            (t("Paid"), funnel.paid),
        ]
        chart = charts.bar_list(
            "referral-funnel",
            title=t("Referral funnel"),
            desc=t("Members with a referral link, friends who joined, qualified and were paid."),
            labels=[label for label, _ in steps],
            values=[float(value) for _, value in steps],
        )
        mailer = services.mailer
        outbox = mailer.sent[:20] if isinstance(mailer, MemoryOutbox) else None
        qr_query = f"?via={source}" if source else ""
        return render(
            viewer, "console/enrollment.html.jinja2", active="enrollment", request=request,
            join_link=join_url(services, brand, via=source), qr_query=qr_query, via=source, funnel=funnel,
            steps=steps, chart=chart, held=held, erasures=erasures, outbox=outbox,
        )  # fmt: skip

    @post("/referrals/{referral_id:int}/{decision:str}", status_code=303)
    async def review(self, referral_id: FromPath[int], decision: FromPath[str], viewer: ConsoleViewerDep) -> Redirect:
        """Approve (pay both, exactly once) or reject a held referral."""
        async with viewer.services.db.write() as session:
            await referrals.review(
                session, viewer.brand, referral_id=referral_id, approve=decision == "approve", now=viewer.now
            )
        return done("/console/enrollment", "saved")

    @post("/erasures/{request_id:int}", status_code=303)
    async def erase(self, request_id: FromPath[int], viewer: ConsoleViewerDep) -> Redirect:
        """Complete a member's erasure request with the erasure."""
        await complete_erasure(viewer.services, viewer.brand, request_id)
        return done("/console/enrollment", "deleted")
