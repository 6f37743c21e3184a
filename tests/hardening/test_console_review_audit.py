"""The console's review queue (approve once, reject) and audit log (with filters), and audited key changes."""

from __future__ import annotations

from tests.helpers import event
from tests.web.test_console import admin, post_form, sign_in  # noqa: F401 - fixture reused

PROGRAM = {
    "earning_rules": [{"key": "visit", "event_type": "visit", "points": 10}],
    "limits": [{"key": "one-visit-an-hour", "event_type": "visit", "max_events": 1, "per": "hour"}],
}


async def test_review_queue_and_audit_log_in_the_console(client, brand, admin):  # noqa: F811
    assert (await client.put("/v1/program", json=PROGRAM, headers=brand.headers)).status_code == 200
    for n in range(3):
        sent = await client.post(
            "/v1/events", json=event(f"held-c{n}", "ada", "visit", f"2026-11-20T09:0{n}:00Z"), headers=brand.headers
        )
        assert sent.json().get("held", False) is (n > 0)
    assert (await sign_in(client, admin)).status_code == 303
    queue = await client.get("/console/review")
    assert queue.status_code == 200
    assert "held-c1" in queue.text and "held-c2" in queue.text and "one-visit-an-hour" in queue.text
    held = (await client.get("/v1/review", headers=brand.headers)).json()["events"]
    approved = await post_form(client, f"/console/review/{held[0]['id']}/approve", {})
    assert approved.status_code == 303
    rejected = await post_form(client, f"/console/review/{held[1]['id']}/reject", {})
    assert rejected.status_code == 303
    points = (await client.get("/v1/members/ada/points", headers=brand.headers)).json()
    assert points["balance"] == 20
    assert "held-c1" not in (await client.get("/console/review")).text
    issued = await post_form(client, "/console/keys", {"kind": "publishable", "label": "POS"})
    assert issued.status_code == 200
    log = await client.get("/console/audit")
    assert log.status_code == 200
    for action in ("program.applied", "review.approved", "review.rejected", "key.created"):
        assert action in log.text, action
    assert f"admin:{admin}" in log.text
    only_keys = await client.get("/console/audit", params={"action": "key."})
    assert "key.created" in only_keys.text and "review.approved" not in only_keys.text
    api = (await client.get("/v1/audit", headers=brand.headers, params={"actor": "admin:"})).json()
    assert {e["action"] for e in api["entries"]} == {"review.approved", "review.rejected", "key.created"}
    program = (await client.get("/v1/audit", headers=brand.headers, params={"action": "program."})).json()
    (applied,) = program["entries"]
    assert applied["actor"].startswith("key:sk_")
    assert any("limit" in change for change in applied["details"]["changes"])


async def test_api_changes_are_audited_in_their_own_transaction(client, brand, db, clock):
    from engine import audit
    from engine.tenants import KeyKind, revoke_key, rotate_key

    program = {"badges": [{"key": "vip", "name": "VIP", "rule": {"event_type": "never", "count": 1}}]}
    assert (await client.put("/v1/program", json=program, headers=brand.headers)).status_code == 200
    await client.post("/v1/members", json={"external_id": "aud-1"}, headers=brand.headers)
    granted = await client.post(
        "/v1/members/aud-1/badges/vip/grant", json={"reason": "event host"}, headers=brand.headers
    )
    assert granted.status_code == 201, granted.text
    hook = await client.post("/v1/webhooks", json={"url": "https://crm.example/hooks"}, headers=brand.headers)
    assert hook.status_code == 201, hook.text
    assert (await client.delete(f"/v1/webhooks/{hook.json()['id']}", headers=brand.headers)).status_code == 204
    refused = await client.post(
        "/v1/members/aud-1/points/adjustments", json={"points": -10, "reason": "too much"}, headers=brand.headers
    )
    assert refused.status_code == 409  # a refused change is not audited (same transaction)
    issued = await rotate_key(db, brand_id=brand.brand.id, kind=KeyKind.PUBLISHABLE, now=clock.now(), actor="cli")
    await revoke_key(db, brand_id=brand.brand.id, prefix=issued.prefix, now=clock.now(), actor="cli")
    async with db.read() as session:
        page = await audit.entries(session, brand_id=brand.brand.id)
    actions = [e.action for e in reversed(page.entries)]
    assert actions == [
        "program.applied", "badge.granted", "webhook.added", "webhook.removed", "key.rotated", "key.revoked",
    ]  # fmt: skip
    assert page.entries[0].actor == "cli"
    assert next(e for e in page.entries if e.action == "badge.granted").details["reason"] == "event host"
    first = await client.get("/v1/audit", params={"limit": 2}, headers=brand.headers)
    older = await client.get(
        "/v1/audit", params={"limit": 10, "before": first.json()["next_before"]}, headers=brand.headers
    )
    assert [e["action"] for e in first.json()["entries"] + older.json()["entries"]] == list(reversed(actions))
