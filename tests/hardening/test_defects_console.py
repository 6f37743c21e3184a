"""Console defects: the widget preview renders and may be framed by the console itself; snippets agree on
the theme; the webhooks page does not call undelivered messages delivered."""

from __future__ import annotations

from tests.helpers import event
from tests.web.test_console import admin, sign_in  # noqa: F401 - fixture reused

BOARD = {"leaderboards": [{"key": "weekly", "title": "Weekly", "metric": {"kind": "points"}, "period": "weekly"}]}


async def test_widget_preview_renders_framed_by_the_console(client, brand, admin):  # noqa: F811
    assert (await client.put("/v1/program", json=BOARD, headers=brand.headers)).status_code == 200
    assert (await sign_in(client, admin)).status_code == 303
    page = await client.get("/console/widgets")
    assert page.status_code == 200
    preview = await client.get("/console/widgets/preview/weekly?theme=dark")
    assert preview.status_code == 200, preview.text
    policy = preview.headers["content-security-policy"]
    assert "frame-ancestors 'self'" in policy
    assert "frame-ancestors 'none'" not in policy
    assert preview.headers.get("x-frame-options", "SAMEORIGIN").upper() != "DENY"


SCOPED = {
    "earning_rules": [{"key": "visit", "event_type": "visit", "points": 10}],
    "leaderboards": [
        {"key": "by-store", "title": "By store", "metric": {"kind": "points"}, "period": "monthly", "scope": "store"}
    ],
}


async def test_a_scoped_board_previews_and_snippets_agree(client, brand, admin):  # noqa: F811
    assert (await client.put("/v1/program", json=SCOPED, headers=brand.headers)).status_code == 200
    await client.post("/v1/members", json={"external_id": "m1", "attributes": {"store": "roma"}}, headers=brand.headers)
    await client.post("/v1/events", json=event("s1", "m1", "visit", "2026-11-20T09:00:00Z"), headers=brand.headers)
    assert (await sign_in(client, admin)).status_code == 303
    preview = await client.get("/console/widgets/preview/by-store?theme=light")
    assert preview.status_code == 200, preview.text
    page = (await client.get("/console/widgets")).text
    assert 'data-theme="light"' in page
    assert "theme=light&amp;amp;rows=10" in page or "theme=light&amp;rows=10" in page
    assert "theme=dark&amp;amp;accent" not in page


async def test_profile_labels_are_translated_and_no_literal_backticks(client, brand, admin):  # noqa: F811
    await client.post(
        "/v1/members",
        json={"external_id": "m2", "attributes": {"store": "roma", "region": "lazio", "tier": "gold"}},
        headers=brand.headers,
    )
    login = await client.get("/console/login?lang=it")
    assert "`" not in login.text.split("<body", 1)[1]
    assert "<code>questline admin create</code>" in login.text
    assert (await sign_in(client, admin)).status_code == 303
    member = await client.get("/console/members/m2?lang=it")
    assert member.status_code == 200
    for label in ("Negozio", "Regione", "Livello"):
        assert f"<dt>{label}</dt>" in member.text, label
    assert "/console/member-export/m2?format=html" in member.text
    export = await client.get("/console/member-export/m2?format=html")
    assert export.status_code == 200 and "m2" in export.text
    widget_error = await client.get("/widgets/leaderboard/none")
    assert "`" not in widget_error.text


async def test_webhooks_page_does_not_call_messages_delivered_without_endpoints(client, brand, admin, db, clock):  # noqa: F811
    import httpx

    from engine.egress import EgressGuard
    from engine.outbox import OutboxDeliverer
    from tests.conftest import public_resolver

    program = {"badges": [{"key": "first", "name": "First", "rule": {"event_type": "visit", "count": 1}}]}
    assert (await client.put("/v1/program", json=program, headers=brand.headers)).status_code == 200
    sent = await client.post(
        "/v1/events", json=event("w1", "m3", "visit", "2026-11-20T09:00:00Z"), headers=brand.headers
    )
    assert sent.status_code == 200
    async with httpx.AsyncClient() as http:
        deliverer = OutboxDeliverer(db, http=http, clock=clock, guard=EgressGuard(resolver=public_resolver))
        await deliverer.deliver_due()
    assert (await sign_in(client, admin)).status_code == 303
    page = await client.get("/console/webhooks")
    assert page.status_code == 200
    assert "badge.awarded" in page.text
    assert "No endpoints yet." not in page.text
    assert "sent nowhere" in page.text
    assert "no endpoint</span>" in page.text
    assert ">delivered" not in page.text


async def test_the_root_is_a_landing_page_and_the_portal_says_how_to_get_in(client):
    root = await client.get("/")
    assert root.status_code == 200
    for link in ('href="/portal"', 'href="/console/login"', 'href="/schema"'):
        assert link in root.text
    portal = await client.get("/portal", follow_redirects=False)
    assert portal.status_code == 401
    assert "expired" not in portal.text
    assert "personal link" in portal.text
    client.cookies.set("ql_member", "stale-session-token", path="/portal")
    stale = await client.get("/portal", follow_redirects=False)
    assert "expired" in stale.text
