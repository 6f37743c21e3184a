"""Rendering notification emails (sandboxed Jinja2, brand overrides) and their signed unsubscribe links.

Brand templates are untrusted text, so they run in Jinja2's ``SandboxedEnvironment`` with autoescape off
(plain text mail; the HTML part is the escaped text). Each mail carries ``List-Unsubscribe`` (the https
link) and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058): a mail client's one-click POST
to that link turns the kind off without a session. The token is signed (itsdangerous, the app's secret,
its own salt) and names the brand, the member and the kind; it does not expire, as mail may be old.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from engine.errors import AuthenticationError, ValidationError
from engine.mail import Mail
from engine.tenants import Brand
from notifications.mailing import Recipient
from notifications.models import Item
from notifications.preferences import Overrides
from web.notify_templates import LINES, default_template

_ENV = SandboxedEnvironment(autoescape=False, trim_blocks=False)
_SALT = "questline:unsubscribe"

#: Sample data the console's preview renders each template with.
SAMPLES: dict[str, dict[str, Any]] = {
    "badge_earned": {"badge": "first-purchase", "name": {"en": "First purchase", "it": "Primo acquisto"}},
    "challenge_completed": {"challenge": "weekend-walk", "points": 50},
    "tier_changed": {"tier": "gold", "previous": "silver"},
    "points_expiring": {"points": 120, "expires_at": "2027-01-31T23:59:00+00:00", "days_before": 7},
    "reward_redeemed": {"reward": "free-coffee", "code": "QL-7H2K", "cost": 300},
    "overtaken": {"board": "monthly-steps", "rank": 4, "by_rank": 3},
    "referral_qualified": {"referrer": "ada", "friend": "grace"},
}


def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=_SALT)


def unsubscribe_token(secret: str, *, brand_id: int, member_id: int, kind: str) -> str:
    """A signed token naming who stops which kind of email (``all`` for every kind)."""
    return str(_serializer(secret).dumps([brand_id, member_id, kind]))


def read_unsubscribe_token(secret: str, token: str) -> tuple[int, int, str]:
    """``(brand id, member id, kind)`` of a token.

    Raises:
        AuthenticationError: a forged, altered or malformed token.
    """
    if len(token) > 512:
        raise AuthenticationError("this unsubscribe link does not work")
    try:
        value = _serializer(secret).loads(token)
    except BadSignature as exc:
        raise AuthenticationError("this unsubscribe link does not work") from exc
    if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, int) for v in value[:2])):
        raise AuthenticationError("this unsubscribe link does not work")
    return int(value[0]), int(value[1]), str(value[2])


def _label(lang: str) -> Any:
    def label(value: Any) -> str:
        if isinstance(value, dict):
            return str(value.get(lang) or value.get("en") or next(iter(value.values()), ""))
        return "" if value is None else str(value)

    return label


def render_text(source: str, context: dict[str, Any], *, lang: str) -> str:
    """Render a template in the sandbox.

    Raises:
        ValidationError: the template does not compile or fails (a brand's bad override).
    """
    try:
        return _ENV.from_string(source).render({**context, "label": _label(lang)})
    except TemplateError as exc:
        raise ValidationError(f"the template does not render: {exc}", field="template") from exc


def line(kind: str, data: dict[str, Any], *, lang: str) -> str:
    """The one-line summary of a notification (feed, digest)."""
    lines = LINES.get(lang, LINES["en"])
    return render_text(lines.get(kind, kind), {"data": data}, lang=lang).strip()


class TemplateRenderer:
    """Renders notification emails for :func:`notifications.mailing.dispatch`."""

    def __init__(self, *, secret: str, public_url: str) -> None:
        self.secret = secret
        self.public_url = public_url.rstrip("/")

    def unsubscribe_url(self, brand: Brand, member_id: int, kind: str) -> str:
        """The one-click unsubscribe link for ``kind`` (``all`` for the digest)."""
        token = unsubscribe_token(self.secret, brand_id=brand.id, member_id=member_id, kind=kind)
        return f"{self.public_url}/unsubscribe/{token}"

    def render(
        self, *, brand: Brand, recipient: Recipient, items: list[Item], digest: bool, overrides: Overrides
    ) -> Mail:
        """The mail for ``items`` (one, or the day's digest)."""
        lang = recipient.locale if recipient.locale in ("en", "it") else "en"
        kind = "digest" if digest else items[0].kind
        subject_src, body_src = overrides.get((kind, lang)) or default_template(kind, lang)
        unsubscribe = self.unsubscribe_url(brand, recipient.member_id, "all" if digest else kind)
        context: dict[str, Any] = {
            "member": recipient.name,
            "brand": brand.name,
            "portal_url": f"{self.public_url}/portal",
            "unsubscribe_url": unsubscribe,
            "data": items[0].data,
            "line": line(items[0].kind, items[0].data, lang=lang),
            "items": [{"kind": i.kind, "data": i.data, "line": line(i.kind, i.data, lang=lang)} for i in items],
        }
        subject = " ".join(render_text(subject_src, context, lang=lang).split())[:200]
        text = render_text(body_src, context, lang=lang)
        body_html = (
            f'<!doctype html><html lang="{lang}"><body><pre style="font-family:inherit;white-space:pre-wrap">'
            f'{html.escape(text)}</pre><p><a href="{html.escape(unsubscribe)}">'
            f"{'Annulla iscrizione' if lang == 'it' else 'Unsubscribe'}</a></p></body></html>"
        )
        return Mail(
            to=recipient.email,
            subject=subject,
            text=text,
            html=body_html,
            headers={
                "List-Unsubscribe": f"<{unsubscribe}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "Auto-Submitted": "auto-generated",
            },
        )

    def preview(self, brand: Brand, kind: str, lang: str, overrides: Overrides) -> Mail:
        """A template rendered with sample data (the console's preview)."""
        recipient = Recipient(member_id=0, external_id="sample", email="member@example.com", name="Ada", locale=lang)
        now = datetime.now(UTC)
        if kind == "digest":
            items = [Item(id=i, kind=k, data=d, created_at=now) for i, (k, d) in enumerate(SAMPLES.items())]
        else:
            items = [Item(id=0, kind=kind, data=SAMPLES[kind], created_at=now)]
        return self.render(brand=brand, recipient=recipient, items=items, digest=kind == "digest", overrides=overrides)
