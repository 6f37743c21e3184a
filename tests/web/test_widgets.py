"""Widgets over HTTP: publishable keys only, frame-ancestors and origin checks from the brand's allow-list,
validated theming, the viewing member's highlight, escaping; and the live-update plumbing (pub/sub → SSE)."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import update

from engine.orm import BrandRow
from engine.redisconn import is_cluster, queue_publish
from tests.helpers import event, make_brand
from web.pages import live

XSS = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"
BOARDS = {
    "leaderboards": [
        {"key": "weekly", "title": "Points this week", "metric": {"kind": "points"}, "period": "weekly"},
        {"key": "staff", "title": "Staff only", "metric": {"kind": "points"}, "visibility": "members"},
    ],
    "earning_rules": [{"key": "visit", "event_type": "visit", "points": 10}],
    "badges": [{"key": "first-visit", "name": "First visit", "rule": {"event_type": "visit", "count": 1}}],
}
SHOP = "https://shop.example"


@pytest.fixture
def widget_client(client):
    """The app on the current backend (the shared ``client`` fixture)."""
    return client


@pytest.fixture
async def shop_brand(widget_client, brand, db):
    """The test brand with boards, a badge, three members with points, and ``https://shop.example`` allowed."""
    applied = await widget_client.put("/v1/program", json=BOARDS, headers=brand.headers)
    assert applied.status_code == 200, applied.text
    async with db.write() as session:
        await session.execute(
            update(BrandRow).where(BrandRow.id == brand.brand.id).values(settings={"allowed_origins": [SHOP]})
        )
    # A new brand's boards are rebuilt into Redis on first use; wait for that before scoring, so the
    # standings below do not depend on a rebuild racing the first writes.
    for _ in range(100):
        read = await widget_client.get("/v1/leaderboards/weekly", headers=brand.headers)
        if read.json().get("source") == "redis":
            break
        await asyncio.sleep(0.05)
    for external_id, name, visits in (("m1", XSS, 3), ("m2", "Bea", 2), ("m3", "Carlo", 1)):
        await widget_client.post(
            "/v1/members", json={"external_id": external_id, "display_name": name}, headers=brand.headers
        )
        for n in range(visits):
            sent = await widget_client.post(
                "/v1/events",
                json=event(f"{external_id}-{n}", external_id, "visit", f"2026-11-20T0{n}:00:00Z"),
                headers=brand.headers,
            )
            assert sent.status_code == 200, sent.text
    return brand


async def test_secret_keys_are_refused_and_publishable_keys_read(widget_client, shop_brand):
    secret = await widget_client.get(f"/widgets/leaderboard/weekly?key={shop_brand.secret}")
    assert secret.status_code == 403
    assert "secret key" in secret.text
    secret_json = await widget_client.get(f"/widgets/v1/leaderboards/weekly?key={shop_brand.secret}")
    assert secret_json.status_code == 403
    unknown = await widget_client.get("/widgets/leaderboard/weekly?key=pk_live_nope")
    assert unknown.status_code == 401
    hidden = await widget_client.get(f"/widgets/leaderboard/staff?key={shop_brand.publishable}")
    assert hidden.status_code == 404
    page = await widget_client.get(f"/widgets/leaderboard/weekly?key={shop_brand.publishable}")
    assert page.status_code == 200
    assert "Points this week" in page.text
    assert ESCAPED in page.text
    assert XSS not in page.text
    assert "set-cookie" not in page.headers  # widgets never set cookies on other sites


async def test_frame_ancestors_and_cross_origin_reads_follow_the_allow_list(widget_client, shop_brand, db, clock):
    page = await widget_client.get(f"/widgets/leaderboard/weekly?key={shop_brand.publishable}")
    policy = page.headers["content-security-policy"]
    assert f"frame-ancestors 'self' {SHOP}" in policy
    assert "script-src 'self'" in policy
    assert "x-frame-options" not in page.headers
    allowed = await widget_client.get(
        f"/widgets/v1/leaderboards/weekly?key={shop_brand.publishable}", headers={"Origin": SHOP}
    )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] in ("*", SHOP)
    assert "access-control-allow-credentials" not in allowed.headers
    rows = allowed.json()["entries"]
    assert [(r["rank"], r["label"]) for r in rows] == [(1, XSS), (2, "Bea"), (3, "Carlo")]
    assert all("member" not in r for r in rows)  # no external ids leave through a publishable key
    refused = await widget_client.get(
        f"/widgets/v1/leaderboards/weekly?key={shop_brand.publishable}", headers={"Origin": "https://evil.example"}
    )
    assert refused.status_code == 403
    bare = await make_brand(db, clock)
    closed = await widget_client.get(f"/widgets/leaderboard/weekly?key={bare.publishable}")
    assert closed.status_code == 404  # no such board for that brand: tenants are sealed


async def test_theme_parameters_are_validated_and_become_css_variables(widget_client, shop_brand):
    key = shop_brand.publishable
    injected = await widget_client.get(f"/widgets/leaderboard/weekly?key={key}&accent=red;}}body{{display:none")
    assert injected.status_code == 422
    assert (await widget_client.get(f"/widgets/leaderboard/weekly?key={key}&theme=neon")).status_code == 422
    assert (await widget_client.get(f"/widgets/leaderboard/weekly?key={key}&rows=500")).status_code == 422
    themed = await widget_client.get(
        f"/widgets/leaderboard/weekly?key={key}&theme=dark&accent=%23FF5A36&font=serif&rows=2"
    )
    assert themed.status_code == 200
    assert 'class="widget dark"' in themed.text
    assert "--w-accent: #FF5A36" in themed.text or "--w-accent: #ff5a36" in themed.text
    assert "Georgia" in themed.text
    nonce = themed.headers["content-security-policy"].split("'nonce-")[1].split("'")[0]
    assert f'<style nonce="{nonce}">' in themed.text
    assert themed.text.count('data-row="') == 2


async def test_the_viewing_member_is_highlighted_and_the_parent_origin_checked(widget_client, shop_brand, db, clock):
    key = shop_brand.publishable
    token = (await widget_client.post("/v1/members/m3/widget-token", json={}, headers=shop_brand.headers)).json()[
        "token"
    ]
    page = await widget_client.get(f"/widgets/leaderboard/weekly?key={key}&rows=1&member={token}&origin={SHOP}")
    assert 'class="me ' in page.text
    assert 'aria-current="true"' in page.text
    assert f'data-parent-origin="{SHOP}"' in page.text
    data = await widget_client.get(f"/widgets/v1/leaderboards/weekly?key={key}&rows=1&member={token}")
    assert data.json()["me"]["rank"] == 3
    assert data.json()["me"]["me"] is True
    sneaky = await widget_client.get(f"/widgets/leaderboard/weekly?key={key}&origin=https://evil.example")
    assert 'data-parent-origin=""' in sneaky.text
    other = await make_brand(db, clock)
    await widget_client.post("/v1/members", json={"external_id": "m3"}, headers=other.headers)
    foreign = (await widget_client.post("/v1/members/m3/widget-token", json={}, headers=other.headers)).json()["token"]
    ignored = await widget_client.get(f"/widgets/v1/leaderboards/weekly?key={key}&member={foreign}")
    assert ignored.json()["me"] is None


async def test_the_badge_widget_shows_the_members_shelf(widget_client, shop_brand):
    key = shop_brand.publishable
    assert (await widget_client.get(f"/widgets/badges?key={key}")).status_code == 401
    token = (await widget_client.post("/v1/members/m1/widget-token", json={}, headers=shop_brand.headers)).json()[
        "token"
    ]
    page = await widget_client.get(f"/widgets/badges?key={key}&member={token}")
    assert page.status_code == 200
    assert 'data-row="first-visit"' in page.text
    assert ESCAPED in page.text
    assert XSS not in page.text
    data = await widget_client.get(f"/widgets/v1/badges?key={key}&member={token}")
    assert [b["key"] for b in data.json()["earned"]] == ["first-visit"]
    assert data.json()["earned"][0]["image"].startswith("/art/")


@pytest.mark.redis_cluster
async def test_a_committed_event_is_announced_on_the_members_and_brands_channels(
    widget_client, shop_brand, settings, redis
):
    ns = settings.redis_namespace
    brand_id = shop_brand.brand.id
    found = await widget_client.get("/v1/members/m2", headers=shop_brand.headers)
    assert found.status_code == 200
    pubsub = redis.pubsub()
    sharded = is_cluster(redis)  # a Redis Cluster publishes with SPUBLISH: listen with SSUBSCRIBE
    receive = pubsub.get_sharded_message if sharded else pubsub.get_message
    await (pubsub.ssubscribe if sharded else pubsub.subscribe)(live.brand_channel(ns, brand_id))
    await receive(timeout=1.0)  # the subscription confirmation
    await widget_client.post(
        "/v1/events", json=event("late", "m2", "visit", "2026-11-20T09:30:00Z"), headers=shop_brand.headers
    )
    message = None
    for _ in range(50):
        message = await receive(ignore_subscribe_messages=True, timeout=0.1)
        if message is not None:
            break
    await pubsub.aclose()
    assert message is not None
    assert "at" in json.loads(message["data"])


@pytest.mark.redis_cluster
async def test_updates_stream_hears_what_the_pipeline_publishes(backend, redis, redis_namespace):
    """The SSE stream and the publishers agree on the backend (sharded pub/sub on a cluster)."""
    channels = [live.brand_channel(redis_namespace, 7), live.member_channel(redis_namespace, 7, 3)]
    stream = live.updates(redis, channels, stream_seconds=3, heartbeat_seconds=5)
    assert (await anext(stream)).event == "ready"

    async def publish() -> None:
        await asyncio.sleep(0.2)
        async with redis.pipeline(transaction=False) as pipe:
            for channel in channels:
                queue_publish(pipe, redis, channel, b"{}")
            await pipe.execute()

    task = asyncio.create_task(publish())
    assert (await anext(stream)).event == "update"
    await task
    await stream.aclose()


async def test_updates_stream_ready_then_one_update_per_burst():
    import fakeredis

    redis = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    stream = live.updates(redis, ["ch"], stream_seconds=3, heartbeat_seconds=0.5)
    first = await anext(stream)
    assert first.event == "ready"

    async def burst():
        await asyncio.sleep(0.2)
        for _ in range(5):
            await redis.publish("ch", b"{}")

    task = asyncio.create_task(burst())
    second = await anext(stream)
    await task
    assert second.event == "update"
    third = await anext(stream)
    assert third.comment == "keep-alive"  # the burst was folded into one update
    await stream.aclose()
    await redis.aclose()
