"""Public join and sign-in pages per brand: ``/join/<brand>`` with double opt-in, magic links, QR codes.

A newcomer enters email, name and consents; nothing is created until the emailed link (single use,
24 hours) is followed. Then the member is enrolled, linked to their referrer (``?ref=CODE``), their
``member.enrolled`` event runs through the pipeline (a welcome-bonus earning rule pays once: its id is
derived from the member) and they land in the portal through a one-time portal link. A returning member
asks for a magic link (single use, 15 minutes, rate limited per email and per client address), which is
a portal link mailed to the address on file. The brand's own signed links keep working unchanged.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, QueryParameter
from litestar.response import Redirect, Template

from engine import tenants
from engine.errors import ValidationError
from engine.events import Event
from engine.mail import Mail
from engine.tenants import Brand
from enrollment import service as enrollment
from referrals import service as referrals
from web.deps import Services, ServicesDep
from web.i18n import Translator
from web.pages import rendering, security, tokens
from web.pages.console.base import accent_of, lang_cookie, request_lang

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
#: The consent texts' versions recorded with each consent (bump when the wording changes).
TERMS_VERSION = "terms-2026-12"
MARKETING_VERSION = "marketing-2026-12"
_SOURCE = re.compile(r"^[A-Za-z0-9_.:\-]{1,60}$")


def join_url(services: Services, brand: Brand, *, ref: str = "", via: str = "") -> str:
    """The public join URL of ``brand`` (with a referral code or a source for QR codes)."""
    base = f"{services.settings.public_url.rstrip('/')}/join/{brand.slug}"
    query = "&".join(part for part in (f"ref={ref}" if ref else "", f"via={via}" if via else "") if part)
    return f"{base}?{query}" if query else base


def _source(via: str, ref: str) -> str:
    if ref:
        return "referral"
    return f"qr:{via}" if via and _SOURCE.match(via) else "web"


async def _brand(services: Services, slug: str) -> Brand:
    async with services.db.read() as session:
        return await tenants.get_brand(session, slug)


def _page(
    request: Request[Any, Any, Any], services: Services, brand: Brand, template: str, *, status: int = 200, **ctx: Any
) -> Template:
    t = Translator(request_lang(request))
    return rendering.page(
        template,
        {"t": t, "brand": brand, "accent": accent_of(brand), **ctx},
        nonce=security.new_nonce(),
        status_code=status,
        cookies=lang_cookie(request, services, path="/join"),
        headers={"Referrer-Policy": "no-referrer"},
    )


def _client(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client is not None else ""


async def send_magic_link(services: Services, brand: Brand, *, external_id: str, email: str, t: Translator) -> str:
    """Mail a single-use, 15-minute portal link to ``email``; returns the link."""
    now = services.clock.now()
    token = tokens.sign(
        secret=services.settings.secret,
        purpose=tokens.Purpose.PORTAL_LINK,
        brand_id=brand.id,
        member=external_id,
        expires_at=now + enrollment.MAGIC_LINK_LIFETIME,
    )
    link = f"{services.settings.public_url.rstrip('/')}/portal/enter/{token}"
    text = t(
        "Hello,\n\nopen this link to sign in to %(brand)s (it works once, for 15 minutes):\n\n%(link)s\n\n"
        "If you did not ask for it, ignore this email.",
        brand=brand.name,
        link=link,
    )
    await services.mailer.send(
        Mail(to=email, subject=t("Your sign-in link for %(brand)s", brand=brand.name), text=text), now=now
    )
    return link


class JoinController(Controller):
    """Join, confirm, sign in: public pages of each brand."""

    path = "/join"
    include_in_schema = False

    @get("/{slug:str}")
    async def form(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        services: ServicesDep,
        ref: Annotated[str, QueryParameter(max_length=32)] = "",
        via: Annotated[str, QueryParameter(max_length=60)] = "",
    ) -> Template:
        """The join form (email, name, consents)."""
        brand = await _brand(services, slug)
        return _page(request, services, brand, "join/form.html.jinja2", ref=ref, via=via, error="", email="", name="")

    @post("/{slug:str}", status_code=200)
    async def submit(
        self, request: Request[Any, Any, Any], slug: FromPath[str], services: ServicesDep, data: FormData
    ) -> Template:
        """Hold the join and mail its confirmation link (a known email gets a sign-in link instead)."""
        brand = await _brand(services, slug)
        t = Translator(request_lang(request))
        ref, via = data.get("ref", "")[:32], data.get("via", "")[:60]
        name = data.get("name", "").strip()[:200]
        raw_email = data.get("email", "")[:320]
        retry = {"ref": ref, "via": via, "email": raw_email, "name": name}
        try:
            email = enrollment.normalise_email(raw_email)
        except ValidationError:
            return _page(request, services, brand, "join/form.html.jinja2", status=400,
                         error=t("Enter a valid email address."), **retry)  # fmt: skip
        if data.get("terms") != "yes":
            return _page(request, services, brand, "join/form.html.jinja2", status=400,
                         error=t("To join, accept the program terms."), **retry)  # fmt: skip
        if not await enrollment.allow_link(
            services.redis, namespace=services.settings.redis_namespace, email=email, client=_client(request)
        ):
            return _page(request, services, brand, "join/sent.html.jinja2", status=429, email=email, limited=True)
        now = services.clock.now()
        async with services.db.read() as session:
            existing = await enrollment.member_by_email(session, brand_id=brand.id, email=email)
        if existing is not None:  # same answer either way: the page does not tell who is a member
            await send_magic_link(services, brand, external_id=existing[1], email=email, t=t)
        else:
            join = enrollment.PendingJoin(
                brand_id=brand.id, email=email, name=name, locale=t.lang, joined_via=_source(via, ref),
                referral_code=ref, asked_at=now, expires_at=now + enrollment.CONFIRM_LIFETIME,
                consents=(
                    enrollment.Consent(kind="terms", version=TERMS_VERSION, granted=True),
                    enrollment.Consent(kind="marketing", version=MARKETING_VERSION, granted=data.get("marketing") == "yes"),
                ),
            )  # fmt: skip
            token = await enrollment.hold_join(
                services.redis, namespace=services.settings.redis_namespace, join=join, now=now
            )
            link = f"{services.settings.public_url.rstrip('/')}/join/{brand.slug}/confirm/{token}"
            text = t(
                "Hello %(name)s,\n\nconfirm your email to join %(brand)s (the link works once, for 24 hours):\n\n"
                "%(link)s\n\nIf you did not ask to join, ignore this email.",
                name=name or email, brand=brand.name, link=link,
            )  # fmt: skip
            await services.mailer.send(
                Mail(to=email, subject=t("Confirm your email for %(brand)s", brand=brand.name), text=text), now=now
            )
        return _page(request, services, brand, "join/sent.html.jinja2", email=email, limited=False)

    @get("/{slug:str}/widget")
    async def widget(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        services: ServicesDep,
        via: Annotated[str, QueryParameter(max_length=60)] = "",
    ) -> Template:
        """The embeddable join widget: framed by the brand's allowed origins, it opens the join page in a new tab."""
        brand = await _brand(services, slug)
        t = Translator(request_lang(request))
        nonce = security.new_nonce()
        source = via if _SOURCE.match(via or "") else "widget"
        return Template(
            template_name="join/widget.html.jinja2",
            context={
                "t": t, "brand": brand, "accent": accent_of(brand), "nonce": nonce,
                "link": join_url(services, brand, via=source),
            },
            headers=security.widget_headers(nonce, security.allowed_origins(brand.settings)),
        )  # fmt: skip

    @get("/{slug:str}/confirm/{token:str}")
    async def confirm(
        self, request: Request[Any, Any, Any], slug: FromPath[str], token: FromPath[str], services: ServicesDep
    ) -> Response[Any]:
        """Follow the emailed link: enrol, link the referrer, reward joining, open the portal."""
        brand = await _brand(services, slug)
        now = services.clock.now()
        join = await enrollment.claim_join(
            services.redis, namespace=services.settings.redis_namespace, token=token, now=now
        )
        if join is None or join.brand_id != brand.id:
            return _page(request, services, brand, "join/invalid.html.jinja2", status=410)
        async with services.db.write() as session:
            member_id, external_id, created = await enrollment.enrol(session, join=join, now=now)
            if created and join.referral_code:
                await referrals.link_friend(
                    session, brand_id=brand.id, code=join.referral_code, friend_id=member_id,
                    friend_email=join.email, now=now,
                )  # fmt: skip
        if created:
            await services.pipeline.process(brand, [enrolled_event(external_id, join.joined_via, now)])
        link = tokens.sign(
            secret=services.settings.secret, purpose=tokens.Purpose.PORTAL_LINK, brand_id=brand.id,
            member=external_id, expires_at=now + timedelta(minutes=5),
        )  # fmt: skip
        return Redirect(f"/portal/enter/{link}", status_code=303, headers={"Referrer-Policy": "no-referrer"})

    @get("/{slug:str}/sign-in")
    async def sign_in_form(
        self, request: Request[Any, Any, Any], slug: FromPath[str], services: ServicesDep
    ) -> Template:
        """Ask for a magic sign-in link."""
        brand = await _brand(services, slug)
        return _page(request, services, brand, "join/sign_in.html.jinja2", error="", email="")

    @post("/{slug:str}/sign-in", status_code=200)
    async def sign_in(
        self, request: Request[Any, Any, Any], slug: FromPath[str], services: ServicesDep, data: FormData
    ) -> Template:
        """Mail a magic link to a known email (the answer is the same for an unknown one)."""
        brand = await _brand(services, slug)
        t = Translator(request_lang(request))
        try:
            email = enrollment.normalise_email(data.get("email", "")[:320])
        except ValidationError:
            return _page(request, services, brand, "join/sign_in.html.jinja2", status=400,
                         error=t("Enter a valid email address."), email=data.get("email", "")[:320])  # fmt: skip
        if not await enrollment.allow_link(
            services.redis, namespace=services.settings.redis_namespace, email=email, client=_client(request)
        ):
            return _page(request, services, brand, "join/sent.html.jinja2", status=429, email=email, limited=True)
        async with services.db.read() as session:
            existing = await enrollment.member_by_email(session, brand_id=brand.id, email=email)
        if existing is not None:
            await send_magic_link(services, brand, external_id=existing[1], email=email, t=t)
        return _page(request, services, brand, "join/sent.html.jinja2", email=email, limited=False)

    @get(["/{slug:str}/qr.svg", "/{slug:str}/qr.png"])
    async def qr(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        services: ServicesDep,
        via: Annotated[str, QueryParameter(max_length=60)] = "",
    ) -> Response[bytes]:
        """A printable QR code (SVG or PNG) of the join URL; ``?via=`` names the store or campaign."""
        import io

        import segno

        fmt = request.url.path.rsplit(".", 1)[-1]
        brand = await _brand(services, slug)
        if via and not _SOURCE.match(via):
            raise ValidationError("via: letters, digits and . _ : - only", field="via")
        code = segno.make(join_url(services, brand, via=via), error="m")
        out = io.BytesIO()
        if fmt == "svg":
            code.save(out, kind="svg", scale=8, border=2, title=f"{brand.name} join")
            media = "image/svg+xml"
        else:
            code.save(out, kind="png", scale=10, border=2)
            media = "image/png"
        return Response(out.getvalue(), media_type=media, headers={"Cache-Control": "public, max-age=3600"})


def enrolled_event(external_id: str, joined_via: str, now: Any) -> Event:
    """The synthetic ``member.enrolled`` event of a new member (its id is derived from the member)."""
    return Event(
        id=enrollment.enrolled_event_id(external_id),
        member=external_id,
        type=enrollment.ENROLLED,
        occurred_at=now,
        properties={"joined_via": joined_via},
    )
