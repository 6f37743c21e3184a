"""Member portal over HTTP: signed links (signing, expiry, tampering, purposes), sessions, pages, languages,
escaping, security headers; plus the pure helpers behind them (tokens, i18n, charts, local days)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from engine.errors import AuthenticationError
from engine.ids import BrandId
from tests.conftest import REDIS_URL
from tests.helpers import event
from web.i18n import LABELS, Translator, from_accept_language, negotiate, translations
from web.i18n.catalogs import po_path
from web.pages import charts, stats, tokens

XSS = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"
PROGRAM = {
    "campaigns": [{"key": "november", "title": "November", "starts_at": "2026-11-01", "ends_at": "2026-12-01"}],
    "challenges": [
        {
            "key": "three-visits",
            "campaign": "november",
            "title": "Three visits",
            "rule": {"type": "count", "event_type": "visit", "target": 3},
            "reward": {"points": 30, "badge": "regular"},
        }
    ],
    "badges": [
        {"key": "regular", "name": "Regular"},
        {"key": "first-visit", "name": "First visit", "rule": {"event_type": "visit", "count": 1}},
    ],
    "leaderboards": [{"key": "weekly", "title": "Points this week", "metric": {"kind": "points"}, "period": "weekly"}],
    "earning_rules": [{"key": "visit", "event_type": "visit", "points": 10}],
}


@pytest.fixture
def page_client(client):
    """The app on the current backend (the shared ``client`` fixture)."""
    return client


async def apply_program(client, brand, document=None):
    response = await client.put("/v1/program", json=document or PROGRAM, headers=brand.headers)
    assert response.status_code == 200, response.text


async def enrol(client, brand, external_id="m1", *, name=XSS, locale="it", **attributes):
    response = await client.post(
        "/v1/members",
        json={"external_id": external_id, "display_name": name, "locale": locale, "attributes": attributes},
        headers=brand.headers,
    )
    assert response.status_code in (200, 201), response.text


async def portal_link(client, brand, external_id="m1", **options) -> str:
    response = await client.post(f"/v1/members/{external_id}/portal-link", json=options, headers=brand.headers)
    assert response.status_code == 201, response.text
    url = response.json()["url"]
    return url[url.index("/portal/") :]


async def open_portal(client, brand, external_id="m1") -> None:
    response = await client.get(await portal_link(client, brand, external_id), follow_redirects=False)
    assert response.status_code == 303, response.text


def set_cookie(response, name: str) -> str:
    return next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith(name + "="))


async def test_link_opens_a_session_with_safe_cookies_and_escaped_name(page_client, brand):
    await enrol(page_client, brand)
    path = await portal_link(page_client, brand)
    entered = await page_client.get(path, follow_redirects=False)
    assert entered.status_code == 303
    assert entered.headers["location"] == "/portal"
    assert entered.headers["referrer-policy"] == "no-referrer"
    cookie = set_cookie(entered, "ql_member").lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/portal" in cookie
    assert "secure" not in cookie  # the test server's public URL is plain http
    home = await page_client.get("/portal")
    assert home.status_code == 200
    assert "I tuoi punti" in home.text  # the member's locale (it) decides
    assert ESCAPED in home.text
    assert XSS not in home.text
    assert "frame-ancestors 'none'" in home.headers["content-security-policy"]
    assert home.headers["x-frame-options"] == "DENY"


async def test_a_link_needs_the_secret_key_and_a_known_member(page_client, brand):
    await enrol(page_client, brand)
    public = await page_client.post("/v1/members/m1/portal-link", json={}, headers=brand.public_headers)
    assert public.status_code == 403
    missing = await page_client.post("/v1/members/nobody/portal-link", json={}, headers=brand.headers)
    assert missing.status_code == 404
    bad = await page_client.post("/v1/members/m1/portal-link", json={"expires_in": 10}, headers=brand.headers)
    assert bad.status_code == 422


async def test_expired_tampered_and_wrong_purpose_links_are_refused(page_client, brand, clock):
    await enrol(page_client, brand)
    path = await portal_link(page_client, brand, expires_in=3600)
    payload, signature = path.removeprefix("/portal/enter/").split(".")
    forged = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    tampered = await page_client.get(f"/portal/enter/{forged}.{signature}", follow_redirects=False)
    assert tampered.status_code == 401
    assert "set-cookie" not in {k for k, _ in tampered.headers.multi_items() if _.startswith("ql_member")}
    widget = await page_client.post("/v1/members/m1/widget-token", json={}, headers=brand.headers)
    as_portal = await page_client.get(f"/portal/enter/{widget.json()['token']}", follow_redirects=False)
    assert as_portal.status_code == 401
    clock.advance(timedelta(seconds=3601))
    expired = await page_client.get(path, follow_redirects=False)
    assert expired.status_code == 401
    assert "expired" in expired.text


async def test_the_session_expires_and_can_be_signed_out(page_client, brand, clock):
    await enrol(page_client, brand)
    await open_portal(page_client, brand)
    assert (await page_client.get("/portal/activity")).status_code == 200
    clock.advance(timedelta(hours=12, minutes=1))
    assert (await page_client.get("/portal")).status_code == 401
    clock.advance(timedelta(hours=-12, minutes=-1))
    await open_portal(page_client, brand)
    token = page_client.cookies.get("ql_csrf")
    out = await page_client.post("/portal/signout", data={"_csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    assert "max-age=0" in set_cookie(out, "ql_member").lower()


async def test_portal_pages_show_progress_badges_rank_and_history(page_client, brand):
    await apply_program(page_client, brand)
    await enrol(page_client, brand, locale="en")
    for index in range(2):
        sent = await page_client.post(
            "/v1/events",
            json=event(f"v{index}", "m1", "visit", f"2026-11-20T0{index + 7}:00:00Z"),
            headers=brand.headers,
        )
        assert sent.status_code == 200, sent.text
    await open_portal(page_client, brand)
    challenges = await page_client.get("/portal/challenges")
    assert challenges.status_code == 200
    assert re.search(r'<progress id="pb-three-visits"[^>]*max="3\.0" value="2\.0"', challenges.text), challenges.text
    assert "Three visits" in challenges.text
    badges = await page_client.get("/portal/badges")
    assert 'data-badge="first-visit"' in badges.text.split('id="shelf-earned"')[1].split("</ul>")[0]
    boards = await page_client.get("/portal/leaderboards")
    assert 'aria-current="true"' in boards.text
    assert "Points this week" in boards.text
    for page in (challenges, badges, boards):
        assert XSS not in page.text
    assert ESCAPED in boards.text  # the member's own row, as text
    history = await page_client.get("/portal/activity")
    assert history.text.count("+10") >= 2
    home = await page_client.get("/portal")
    assert "Your points" in home.text
    assert 'data-live="balance"' in home.text


async def test_language_follows_the_member_then_an_explicit_choice(page_client, brand):
    await enrol(page_client, brand, locale="en-GB")
    await open_portal(page_client, brand)
    english = await page_client.get("/portal/activity")
    assert 'lang="en"' in english.text
    switched = await page_client.get("/portal/activity?lang=it")
    assert 'lang="it"' in switched.text
    assert "Storico punti" in switched.text
    assert 'lang="it"' in (await page_client.get("/portal/badges")).text  # remembered in a cookie


async def test_cookies_are_secure_when_the_public_url_is_https(settings, redis, clock, brand, backend):
    from web.app import create_app

    secure = msgspec.structs.replace(settings, public_url="https://loyalty.example")
    if not backend.endswith("fakeredis"):
        secure = msgspec.structs.replace(secure, redis_url=REDIS_URL)
    app = create_app(
        secure, clock=clock, redis=redis if backend.endswith("fakeredis") else None, deliver_webhooks=False
    )
    async with AsyncTestClient(app=app, base_url="https://loyalty.example") as client:
        await enrol(client, brand)
        response = await client.post("/v1/members/m1/portal-link", json={}, headers=brand.headers)
        assert response.json()["url"].startswith("https://loyalty.example/portal/enter/")
        entered = await client.get(response.json()["url"], follow_redirects=False)
        assert "secure" in set_cookie(entered, "ql_member").lower()
        assert "secure" in set_cookie(entered, "ql_csrf").lower()


async def test_openapi_documents_the_link_and_widget_endpoints(page_client):
    schema = (await page_client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    for path in (
        "/v1/members/{external_id}/portal-link",
        "/v1/members/{external_id}/widget-token",
        "/widgets/v1/leaderboards/{board}",
        "/widgets/v1/badges",
    ):
        operation = next(iter(paths[path].values()))
        assert operation["summary"]
        assert any(code.startswith("2") for code in operation["responses"])
    assert not any(p.startswith(("/portal", "/console", "/widgets/leaderboard")) for p in paths)


# --- pure helpers -----------------------------------------------------------------------------------------


NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)


def test_tokens_round_trip_and_refuse_every_kind_of_misuse():
    token = tokens.sign(
        secret="s3cret",
        purpose=tokens.Purpose.PORTAL_LINK,
        brand_id=BrandId(7),
        member="m-1",
        expires_at=NOW + timedelta(hours=1),
    )
    claims = tokens.verify(token, secret="s3cret", purpose=tokens.Purpose.PORTAL_LINK, now=NOW)
    assert (claims.brand_id, claims.member) == (7, "m-1")
    with pytest.raises(AuthenticationError):
        tokens.verify(token, secret="other", purpose=tokens.Purpose.PORTAL_LINK, now=NOW)
    with pytest.raises(AuthenticationError):
        tokens.verify(token, secret="s3cret", purpose=tokens.Purpose.WIDGET_MEMBER, now=NOW)
    with pytest.raises(AuthenticationError, match="expired"):
        tokens.verify(token, secret="s3cret", purpose=tokens.Purpose.PORTAL_LINK, now=NOW + timedelta(hours=1))
    for garbage in ("", ".", "abc", "abc.def", token + "x", "x" * 3000):
        with pytest.raises(AuthenticationError):
            tokens.verify(garbage, secret="s3cret", purpose=tokens.Purpose.PORTAL_LINK, now=NOW)


@pytest.mark.parametrize(
    ("candidates", "header", "expected"),
    [
        (("it-IT",), None, "it"),
        ((None, "en_GB"), "it", "en"),
        (("fr",), "de, it;q=0.8, en;q=0.5", "it"),
        ((), "en;q=0.2, it;q=0", "en"),
        ((), None, "en"),
    ],
)
def test_the_language_is_negotiated(candidates, header, expected):
    assert negotiate(*candidates, accept_language=header) == expected


def test_numbers_dates_and_plurals_in_both_languages():
    it, en = Translator("it"), Translator("en")
    assert (it.number(1234567), en.number(1234567)) == ("1.234.567", "1,234,567")
    assert (it.number(160.5), en.number(160.5)) == ("160,5", "160.5")
    assert it.date(date(2026, 11, 20)) == "20 nov 2026"
    assert en.date(date(2026, 11, 20)) == "Nov 20, 2026"
    assert it.until(NOW + timedelta(days=3, hours=1), NOW) == "mancano 3 giorni"
    assert en.until(NOW + timedelta(minutes=1), NOW) == "1 minute left"
    assert en.signed(-20) == "−20"
    assert from_accept_language("xx") is None


def _italian_catalog() -> dict[tuple[str | None, str], str]:
    from babel.messages.pofile import read_po

    with po_path("it").open("rb") as source:
        catalog = read_po(source, locale="it")
    return {(m.context, m.id[0] if isinstance(m.id, tuple) else m.id): m.string for m in catalog if m.id}


def test_every_message_used_by_pages_exists_in_both_languages():
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    with Path("babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    keywords = {**DEFAULT_KEYWORDS, "t": None, "plural": (1, 2)}
    used = {
        (context, message[0] if isinstance(message, tuple) else message)
        for _, _, message, _, context in extract_from_dir(".", method_map, options_map, keywords=keywords)
    }
    assert len(used) > 300
    italian = _italian_catalog()
    assert sorted(str(key) for key in used if not italian.get(key)) == [], "it"
    # English is the msgids themselves; every Italian entry is still used somewhere (no stale catalog).
    assert sorted(str(key) for key in italian if key not in used) == []
    assert translations("it").gettext("Skip to content") == "Vai al contenuto"


def test_charts_escape_labels_and_scale_to_round_numbers():
    svg = charts.bar_list("c", title="<b>t</b>", desc="d", labels=[XSS], values=[3.0])
    assert XSS not in svg
    assert ESCAPED in svg
    assert charts.nice_max(0) == 1.0
    assert charts.nice_max(7) == 10.0
    assert charts.nice_max(1200) == 2000.0
    column = charts.column_chart("e", title="Events", desc="", labels=["1/11", "2/11"], values=[0, 4])
    assert column.count("<rect") == 2


def test_local_days_follow_daylight_saving_changes():
    rome = ZoneInfo("Europe/Rome")
    segments = stats.offset_segments(rome, datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC))
    assert [offset.total_seconds() / 3600 for _, offset in segments] == [2, 1]
    assert segments[1][0] == datetime(2026, 10, 25, 1, tzinfo=UTC)
    assert stats.day_range(NOW, rome, 3) == [date(2026, 11, 18), date(2026, 11, 19), date(2026, 11, 20)]


async def test_a_member_joins_an_opt_in_campaign_from_the_portal(page_client, brand):
    document = {
        "campaigns": [{"key": "panel", "title": "Tasting panel", "opt_in": True}],
        "challenges": [
            {
                "key": "two-surveys",
                "campaign": "panel",
                "title": "Two surveys",
                "rule": {"type": "count", "event_type": "survey", "target": 2},
            }
        ],
    }
    await apply_program(page_client, brand, document)
    await enrol(page_client, brand, locale="en")
    await open_portal(page_client, brand)
    before = await page_client.get("/portal/challenges")
    assert 'action="/portal/challenges/two-surveys/join"' in before.text
    joined = await page_client.post(
        "/portal/challenges/two-surveys/join",
        data={"_csrf_token": page_client.cookies.get("ql_csrf")},
        follow_redirects=False,
    )
    assert joined.status_code == 303
    after = await page_client.get("/portal/challenges")
    assert 'action="/portal/challenges/two-surveys/join"' not in after.text
    unknown = await page_client.post(
        "/portal/challenges/nope/join", data={"_csrf_token": page_client.cookies.get("ql_csrf")}
    )
    assert unknown.status_code == 404
    assert "<html" in unknown.text  # a page, not problem JSON


def test_message_families_built_at_run_time_are_complete():
    from typing import get_args

    from challenges.models import CampaignState, Recurrence
    from leaderboards.models import PeriodName, Ties, Visibility
    from web.pages.console.base import FLASHES
    from web.pages.console.campaign_forms import RULE_TYPES

    wanted = (
        [("challenge.state", s.value) for s in CampaignState]
        + [("rule", r) for r in RULE_TYPES]
        + [("period", p) for p in get_args(PeriodName)]
        + [("boards.ties", t) for t in get_args(Ties)]
        + [("boards.visibility", v) for v in get_args(Visibility)]
        + [("campaigns.recurrence", r) for r in get_args(Recurrence)]
        + [("challenge.recurrence", r) for r in get_args(Recurrence) if r != "none"]
        + [("flash", f) for f in FLASHES]
    )
    assert [pair for pair in wanted if pair[1] not in LABELS[pair[0]]] == [], "en"
    italian = _italian_catalog()
    assert [pair for pair in wanted if not italian.get((None, LABELS[pair[0]][pair[1]]))] == [], "it"


def test_templates_translate_plurals_and_contexts_and_escape_messages_and_values():
    from web.i18n import Localized
    from web.pages.rendering import build_environment

    env = build_environment()
    source = (
        '{{ _("Hi %(name)s!", name=who) }}|{{ ngettext("%(count)s day left", "%(count)s days left", n) }}'
        '|{{ pgettext("widget", "Live") }}|{% trans %}Skip to content{% endtrans %}'
    )
    template = env.from_string(source)
    it = template.render(t=Translator("it"), who=XSS, n=1234)
    assert it == f"Ciao {ESCAPED}!|mancano 1.234 giorni|Live|Vai al contenuto"
    en = template.render(t=Translator("en"), who="Ann", n=1)
    assert en == "Hi Ann!|1 day left|Live|Skip to content"
    macro = env.from_string(
        '{% from "partials/macros.html.jinja2" import localized with context %}{{ localized(a) }}|{{ localized(b) }}'
    )
    shown = macro.render(t=Translator("it"), a=Localized(text="Weekly <b>", lang="en"), b="Sfida")
    assert shown == '<span lang="en">Weekly &lt;b&gt;</span>|Sfida'
    assert macro.render(t=Translator("en"), a=Localized(text="Weekly", lang="en"), b="x") == "Weekly|x"


def test_relative_times_and_short_dates_follow_cldr():
    it, en = Translator("it"), Translator("en")
    assert it.since(NOW - timedelta(hours=3, minutes=5), NOW) == "3 ore fa"
    assert en.since(NOW - timedelta(days=400), NOW) == "400 days ago"
    assert en.since(NOW - timedelta(seconds=5), NOW) == "just now"
    assert (it.short_date(date(2026, 11, 20)), en.short_date(date(2026, 11, 20))) == ("20/11", "11/20")
    assert it.plural("%(count)s day left", "%(count)s days left", 1) == "manca 1 giorno"
    assert it.label("rule", "streak") == "Serie"
    assert it.label("rule", "unknown") == "unknown"


ACCENTS = ["#ffff00", "#fde68a", "#5b3df5", "#101010", "#00ff00", "#ffffff", "#000000"]
ACCENTS += ["#00aaff", "#10b981", "#f59e0b", "#e11d48", "#ff0000", "#0000ff", "#222222"]


@pytest.mark.parametrize("accent", ACCENTS)
def test_focus_rings_from_any_accent_reach_three_to_one_on_every_surface(accent):
    from web.pages import colors

    values = colors.accent_variables(accent)
    for surface in colors.LIGHT_SURFACES:  # cards, the page background, light widget rows
        assert colors.contrast(values["--focus-ring"], surface) >= 3.0, surface
    for surface in colors.DARK_SURFACES:  # dark widgets and their rows
        assert colors.contrast(values["--focus-ring-dark"], surface) >= 3.0, surface
    assert values["--focus-ring"] == accent or accent not in ("#5b3df5", "#101010", "#000000", "#ff0000")


@pytest.mark.parametrize("accent", ACCENTS)
def test_accent_text_reads_on_its_pale_tint_and_the_page(accent):
    from web.pages import colors

    values = colors.accent_variables(accent)
    # the points balance, accent chips, info alerts and unranked medals: accent text on the pale tint
    for background in (values["--accent-soft"], *colors.LIGHT_SURFACES):
        assert colors.contrast(values["--accent-strong"], background) >= 4.5, background


def test_the_surfaces_the_colours_are_checked_on_are_the_stylesheets():
    from web.pages import colors
    from web.pages.rendering import STATIC_DIR

    css = (STATIC_DIR / "app.css").read_text()
    painted = {
        re.search(r"--card: (#[0-9a-f]{6});", css)[1],
        re.search(r"--bg: (#[0-9a-f]{6});", css)[1],
        re.search(r"\.widget \{\s*--w-bg: (#[0-9a-f]{6});", css)[1],
        re.search(r"\.widget \{[^}]*--w-row: (#[0-9a-f]{6});", css)[1],
    }
    dark = css.split(".widget.dark {")[1].split("}")[0]
    assert painted <= set(colors.LIGHT_SURFACES)
    assert {re.search(r"--w-bg: (#[0-9a-f]{6})", dark)[1], re.search(r"--w-row: (#[0-9a-f]{6})", dark)[1]} <= set(
        colors.DARK_SURFACES
    )


def test_medal_colours_read_on_widget_rows_in_both_themes():
    from web.pages import colors
    from web.pages.rendering import STATIC_DIR

    css = (STATIC_DIR / "app.css").read_text()
    light = dict(re.findall(r"--(gold|silver|bronze): (#[0-9a-f]{6});", css.split(".widget.dark")[0]))
    dark = dict(re.findall(r"--(gold|silver|bronze): (#[0-9a-f]{6});", css.split(".widget.dark {")[1].split("}")[0]))
    assert set(light) == set(dark) == {"gold", "silver", "bronze"}
    for medal in light.values():
        assert colors.contrast(medal, "#f7f8fb") >= 4.5  # rank number on a light row
        assert colors.contrast(medal, "#ffffff") >= 4.5  # white number on the medal
    for medal in dark.values():
        assert colors.contrast(medal, "#1a1f31") >= 4.5  # rank number on a dark row
