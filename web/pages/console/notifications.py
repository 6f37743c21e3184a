"""Console: which notifications are on, quiet hours and digest hour, and each email template previewed.

Previews render the brand's own template (or the default) with sample data, so a mistake in an override
shows here before a member sees it; an override that does not render is refused when saved.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter
from litestar.response import Redirect, Template

from engine.errors import ValidationError
from engine.tenants import KeyCache
from notifications import preferences
from notifications.models import KINDS, BrandControls, controls_of
from web.notify_mail import TemplateRenderer
from web.notify_templates import default_template
from web.pages.console.base import CONSOLE_DEPENDENCIES, CONSOLE_EXCEPTION_HANDLERS, ConsoleViewerDep, done, render
from web.pages.notifications import KIND_LABELS

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


class NotificationsPageController(Controller):
    """The brand's notification controls and templates."""

    path = "/console/notifications"
    include_in_schema = False
    dependencies = CONSOLE_DEPENDENCIES
    exception_handlers = CONSOLE_EXCEPTION_HANDLERS

    @get("/")
    async def overview(
        self,
        request: Request[Any, Any, Any],
        viewer: ConsoleViewerDep,
        lang: Annotated[str, QueryParameter(max_length=2)] = "en",
    ) -> Template:
        """Controls, and a preview of every template in ``lang``."""
        services, brand, t = viewer.services, viewer.brand, viewer.t
        locale = lang if lang in preferences.LOCALES else "en"
        async with services.db.read() as session:
            overrides = await preferences.overrides(session, brand_id=brand.id)
        renderer = TemplateRenderer(secret=services.settings.secret, public_url=services.settings.public_url)
        previews = []
        for kind in preferences.TEMPLATE_KINDS:
            mail = renderer.preview(brand, kind, locale, overrides)
            subject, body = overrides.get((kind, locale)) or default_template(kind, locale)
            label = t("Daily digest") if kind == "digest" else t(KIND_LABELS[kind])
            previews.append(
                {"kind": kind, "label": label, "mail": mail, "subject": subject, "body": body,
                 "custom": (kind, locale) in overrides}
            )  # fmt: skip
        controls = controls_of(brand.settings)
        kinds = [(k, t(KIND_LABELS[k]), k in controls.enabled) for k in KINDS]
        return render(
            viewer, "console/notifications.html.jinja2", active="notifications", request=request,
            controls=controls, kinds=kinds, previews=previews, lang=locale,
        )  # fmt: skip

    @post("/controls", status_code=303)
    async def save_controls(self, viewer: ConsoleViewerDep, data: FormData) -> Redirect:
        """Kinds on, email on, quiet hours, digest hour."""
        raw: dict[str, Any] = {
            "enabled": [k for k in KINDS if data.get(f"kind_{k}") == "yes"],
            "email": data.get("email") == "yes",
            "quiet_start": data.get("quiet_start") or None,
            "quiet_end": data.get("quiet_end") or None,
            "digest_hour": data.get("digest_hour", "9"),
        }
        try:
            raw["digest_hour"] = int(raw["digest_hour"])
            controls = msgspec.convert(raw, BrandControls)
        except (ValueError, msgspec.ValidationError) as exc:
            raise ValidationError(str(exc), field="controls") from exc
        async with viewer.services.db.write() as session:
            await preferences.save_controls(session, brand_id=viewer.brand.id, controls=controls)
        KeyCache.clear_all()  # the brand (and its settings) is cached with its keys
        return done("/console/notifications", "saved")

    @post("/templates", status_code=303)
    async def save_template(self, viewer: ConsoleViewerDep, data: FormData) -> Redirect:
        """Store the brand's own template for a kind and language (an empty body restores the default)."""
        services, brand = viewer.services, viewer.brand
        kind, locale = data.get("kind", ""), data.get("locale", "")
        subject, body = data.get("subject", ""), data.get("body", "")
        if body.strip():
            renderer = TemplateRenderer(secret=services.settings.secret, public_url=services.settings.public_url)
            if kind not in preferences.TEMPLATE_KINDS or locale not in preferences.LOCALES:
                raise ValidationError("unknown notification kind or language", field="kind")
            renderer.preview(brand, kind, locale, {(kind, locale): (subject, body)})  # refuses what does not render
        async with services.db.write() as session:
            await preferences.save_override(
                session, brand_id=brand.id, kind=kind, locale=locale, subject=subject, body=body, now=viewer.now
            )
        return done(f"/console/notifications?lang={locale}#tpl-{kind}", "saved")
