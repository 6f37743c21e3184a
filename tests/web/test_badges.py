import asyncio
import hashlib
import io
import json

from litestar.testing import AsyncTestClient
from PIL import Image
from sqlalchemy import func, select

from badges import openbadges as ob
from badges.orm import BadgeAwardRow
from badges.processor import BadgesProcessor
from engine.effects import ChallengeCompleted
from engine.orm import LedgerRow, OutboxRow
from engine.points import PointsProcessor
from tests.helpers import event, make_brand

ORIGIN = "http://127.0.0.1:8000"  # Settings.public_url in tests


def local(url):
    assert url.startswith(ORIGIN), url
    return url[len(ORIGIN) :]


async def put_badge(client, brand, **spec):
    response = await client.put(f"/v1/badges/{spec['key']}", json=spec, headers=brand.headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def send(client, brand, *events):
    response = await client.post("/v1/events", json={"events": list(events)}, headers=brand.headers)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def awarded(result):
    return [(e["badge"], e["level"], e["count"]) for e in result["effects"] if e["type"] == "badge_awarded"]


async def award_count(db, brand, key):
    async with db.read() as session:
        return await session.scalar(
            select(func.count())
            .select_from(BadgeAwardRow)
            .where(BadgeAwardRow.brand_id == brand.brand.id, BadgeAwardRow.badge_key == key)
        )


async def test_badge_definitions_crud_and_validation(client, brand, db, clock):
    created = await client.put(
        "/v1/badges/critic",
        json={
            "key": "critic",
            "name": "Critic",
            "icon": "chat",
            "rule": {"event_type": "review"},
            "levels": [{"key": "bronze", "threshold": 1}, {"key": "silver", "threshold": 10}],
        },
        headers=brand.headers,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    slug = brand.brand.slug
    assert body["criteria"] == "Count review events: Bronze at 1, Silver at 10."
    assert body["image"] == f"{ORIGIN}/art/{slug}/critic/image.svg?level=bronze"
    assert body["badge_class"] == f"{ORIGIN}/ob/v2/badgeclasses/{slug}/critic"
    assert (body["holders"], body["rarity"], body["uploaded_image"]) == (0, 0.0, False)
    again = await client.put("/v1/badges/critic", json={"key": "critic", "name": "Critic!"}, headers=brand.headers)
    assert again.status_code == 200
    assert [b["name"] for b in (await client.get("/v1/badges", headers=brand.headers)).json()] == ["Critic!"]

    bad = await client.put(
        "/v1/badges/x", json={"key": "x", "name": "X", "levels": [{"key": "b", "threshold": 1}]}, headers=brand.headers
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "$.rule"
    mismatch = await client.put("/v1/badges/x", json={"key": "y", "name": "Y"}, headers=brand.headers)
    assert (mismatch.status_code, mismatch.json()["field"]) == (422, "$.key")
    unknown = await client.put("/v1/badges/x", json={"key": "x", "name": "X", "colour": "#fff"}, headers=brand.headers)
    assert unknown.status_code in (400, 422)
    assert (await client.get("/v1/badges/x", headers=brand.headers)).status_code == 404
    assert (await client.get("/v1/badges", headers=brand.public_headers)).status_code == 403

    assert (await client.delete("/v1/badges/critic", headers=brand.headers)).status_code == 204
    assert (await client.get("/v1/badges/critic", headers=brand.headers)).status_code == 404
    await put_badge(client, brand, key="vip", name="VIP")
    await client.post("/v1/members/", json={"external_id": "m1"}, headers=brand.headers)
    await client.post("/v1/members/m1/badges/vip/grant", json={"reason": "welcome"}, headers=brand.headers)
    refused = await client.delete("/v1/badges/vip", headers=brand.headers)
    assert refused.status_code == 409


async def test_level_up_bronze_silver_gold_with_bonus_points(client, brand, db):
    await put_badge(
        client,
        brand,
        key="critic",
        name="Critic",
        rule={"event_type": "review", "filter": {"field": "properties.stars", "gte": 4}},
        levels=[
            {"key": "bronze", "threshold": 1, "points": 10},
            {"key": "silver", "threshold": 3, "points": 30},
            {"key": "gold", "threshold": 5, "points": 50},
        ],
    )
    seen = []
    for n, stars in enumerate([5, 4, 2, 5, 4, 5]):
        (result,) = await send(client, brand, event(f"r{n}", "m1", "review", f"2026-11-1{n}T10:00:00Z", stars=stars))
        seen.append(awarded(result))
        if n == 1:
            shelf = (await client.get("/v1/members/m1/badges", headers=brand.headers)).json()
            assert shelf["earned"][0]["level"] == "bronze"
            assert shelf["in_progress"][0]["progress"] == {
                "level": "silver",
                "level_name": "Silver",
                "current": 2,
                "target": 3,
                "percent": 66.7,
            }
    assert seen == [[("critic", "bronze", 1)], [], [], [("critic", "silver", 1)], [], [("critic", "gold", 1)]]
    points = (await client.get("/v1/members/m1/points", headers=brand.headers)).json()
    assert points["balance"] == 90
    shelf = (await client.get("/v1/members/m1/badges", headers=brand.headers)).json()
    (earned,) = shelf["earned"]
    assert (earned["level"], earned["level_name"], earned["count"], earned["next"]) == ("gold", "Gold", 1, None)
    assert [a["level"] for a in earned["awards"]] == ["bronze", "silver", "gold"]
    assert earned["awarded_at"] == "2026-11-10T10:00:00Z"
    assert earned["last_awarded_at"] == "2026-11-15T10:00:00Z"
    assert shelf["in_progress"] == []
    assert await award_count(db, brand, "critic") == 3


async def test_repeatable_badge_three_times_and_a_retry_does_not_make_four(client, brand, db):
    await put_badge(
        client, brand, key="survey-star", name="Survey star", repeatable=True, points=5, rule={"event_type": "survey"}
    )
    results = await send(client, brand, *(event(f"s{n}", "m1", "survey", f"2026-11-1{n}T10:00:00Z") for n in range(3)))
    assert [awarded(r) for r in results] == [
        [("survey-star", "", 1)],
        [("survey-star", "", 2)],
        [("survey-star", "", 3)],
    ]
    (retry,) = await send(client, brand, event("s2", "m1", "survey", "2026-11-12T10:00:00Z"))
    assert retry["duplicate"] is True
    assert awarded(retry) == [("survey-star", "", 3)]
    assert await award_count(db, brand, "survey-star") == 3
    shelf = (await client.get("/v1/members/m1/badges", headers=brand.headers)).json()
    assert [(e["key"], e["count"]) for e in shelf["earned"]] == [("survey-star", 3)]
    assert (await client.get("/v1/members/m1/points", headers=brand.headers)).json()["balance"] == 15


async def test_twenty_parallel_events_completing_the_criterion_award_once(client, brand, db):
    await put_badge(
        client, brand, key="first-purchase", name="First purchase", points=20, rule={"event_type": "purchase"}
    )
    responses = await asyncio.gather(
        *(
            client.post(
                "/v1/events",
                json=event(f"p{n}", "m1", "purchase", "2026-11-20T09:00:00Z", amount=3),
                headers=brand.headers,
            )
            for n in range(20)
        )
    )
    assert [r.status_code for r in responses] == [200] * 20
    assert sum(len(awarded(r.json())) for r in responses) == 1
    assert await award_count(db, brand, "first-purchase") == 1
    async with db.read() as session:
        bonus = await session.scalar(
            select(func.count())
            .select_from(LedgerRow)
            .where(LedgerRow.brand_id == brand.brand.id, LedgerRow.source == "badge")
        )
        notices = await session.scalar(
            select(func.count())
            .select_from(OutboxRow)
            .where(OutboxRow.brand_id == brand.brand.id, OutboxRow.topic == "badge.awarded")
        )
    assert (bonus, notices) == (1, 1)


async def test_shelf_shows_rarity_locked_and_keeps_hidden_badges_secret(client, brand):
    await put_badge(client, brand, key="first-purchase", name="First purchase", rule={"event_type": "purchase"})
    await put_badge(client, brand, key="regular", name="Regular", rule={"event_type": "visit", "count": 3})
    await put_badge(client, brand, key="secret", name="Secret", hidden=True, rule={"event_type": "visit", "count": 2})
    await put_badge(client, brand, key="paused", name="Paused", active=False)
    await send(
        client,
        brand,
        event("p1", "m1", "purchase", "2026-11-20T09:00:00Z"),
        event("v1", "m1", "visit", "2026-11-20T09:00:00Z"),
        *(event(f"x{n}", f"m{n}", "survey", "2026-11-20T09:00:00Z") for n in range(2, 5)),
    )
    shelf = (await client.get("/v1/members/m1/badges", headers=brand.headers)).json()
    assert shelf["member"] == "m1"
    assert [(e["key"], e["rarity"]) for e in shelf["earned"]] == [("first-purchase", 25.0)]
    assert [(p["key"], p["progress"]["current"], p["progress"]["target"]) for p in shelf["in_progress"]] == [
        ("regular", 1, 3)
    ]
    assert [lk["key"] for lk in shelf["locked"]] == []
    other = (await client.get("/v1/members/m2/badges", headers=brand.headers)).json()
    assert other["earned"] == []
    assert [(lk["key"], lk["rarity"], lk["criteria"]) for lk in other["locked"]] == [
        ("first-purchase", 25.0, "Record 1 purchase event."),
        ("regular", 0.0, "Record 3 visit events."),
    ]
    (result,) = await send(client, brand, event("v2", "m1", "visit", "2026-11-20T10:00:00Z"))
    assert awarded(result) == [("secret", "", 1)]
    shelf = (await client.get("/v1/members/m1/badges", headers=brand.headers)).json()
    assert [e["key"] for e in shelf["earned"]] == ["first-purchase", "secret"]
    assert (await client.get("/v1/members/nobody/badges", headers=brand.headers)).status_code == 404


async def test_manual_grant_revoke_and_the_hosted_assertion_reports_revocation(client, brand):
    await put_badge(client, brand, key="founding-member", name="Founding member", points=100)
    await client.post("/v1/members/", json={"external_id": "m1"}, headers=brand.headers)
    granted = await client.post(
        "/v1/members/m1/badges/founding-member/grant", json={"reason": "with us since day one"}, headers=brand.headers
    )
    assert granted.status_code == 201, granted.text
    award = granted.json()["award"]
    assert (granted.json()["awarded"], award["source"], award["reason"], award["points"]) == (
        True,
        "manual",
        "with us since day one",
        100,
    )
    again = await client.post(
        "/v1/members/m1/badges/founding-member/grant", json={"reason": "twice"}, headers=brand.headers
    )
    assert (again.status_code, again.json()["awarded"], again.json()["award"]["id"]) == (200, False, award["id"])
    assert (await client.get("/v1/members/m1/points", headers=brand.headers)).json()["balance"] == 100

    hosted = await client.get(local(award["assertion"]))
    assert hosted.status_code == 200
    assert "revoked" not in hosted.json()
    revoked = await client.post(
        "/v1/members/m1/badges/founding-member/revoke", json={"reason": "granted by mistake"}, headers=brand.headers
    )
    assert revoked.status_code == 200, revoked.text
    assert [(a["id"], a["revocation_reason"]) for a in revoked.json()["revoked"]] == [
        (award["id"], "granted by mistake")
    ]

    gone = await client.get(local(award["assertion"]))
    assert gone.status_code == 410
    assert gone.headers["content-type"].startswith("application/ld+json")
    doc = gone.json()
    assert (doc["id"], doc["type"], doc["revoked"], doc["revocationReason"]) == (
        award["assertion"],
        "Assertion",
        True,
        "granted by mistake",
    )
    credential = await client.get(local(award["credential"]))
    assert (credential.status_code, credential.json()["revoked"]) == (410, True)
    assert (await client.get(local(award["baked_png"]))).status_code == 410
    assert (await client.get(local(award["baked_svg"]))).status_code == 410
    shelf = (await client.get("/v1/members/m1/badges", headers=brand.headers)).json()
    assert shelf["earned"] == []
    nothing = await client.post(
        "/v1/members/m1/badges/founding-member/revoke", json={"reason": "x"}, headers=brand.headers
    )
    assert nothing.status_code == 404

    reinstated = await client.post(
        "/v1/members/m1/badges/founding-member/grant", json={"reason": "our mistake"}, headers=brand.headers
    )
    assert (reinstated.status_code, reinstated.json()["reinstated"], reinstated.json()["award"]["id"]) == (
        201,
        True,
        award["id"],
    )
    assert (await client.get(local(award["assertion"]))).status_code == 200
    assert (await client.get("/v1/members/m1/points", headers=brand.headers)).json()["balance"] == 100


async def test_manual_grants_of_repeatables_are_idempotent_per_ref_and_checked(client, brand, db, clock):
    await put_badge(client, brand, key="kudos", name="Kudos", repeatable=True)
    await put_badge(client, brand, key="paused", name="Paused", active=False)
    await put_badge(
        client,
        brand,
        key="tiers",
        name="Tiers",
        rule={"event_type": "visit"},
        levels=[{"key": "bronze", "threshold": 1}, {"key": "gold", "threshold": 9}],
    )
    await client.post("/v1/members/", json={"external_id": "m1"}, headers=brand.headers)
    grant = "/v1/members/m1/badges/{}/grant"
    first = await client.post(grant.format("kudos"), json={"reason": "help desk", "ref": "T-1"}, headers=brand.headers)
    same = await client.post(grant.format("kudos"), json={"reason": "help desk", "ref": "T-1"}, headers=brand.headers)
    other = await client.post(grant.format("kudos"), json={"reason": "again"}, headers=brand.headers)
    assert [r.status_code for r in (first, same, other)] == [201, 200, 201]
    gold = await client.post(grant.format("tiers"), json={"reason": "VIP", "level": "gold"}, headers=brand.headers)
    assert (gold.status_code, gold.json()["award"]["level"]) == (201, "gold")
    bad_level = await client.post(
        grant.format("tiers"), json={"reason": "x", "level": "platinum"}, headers=brand.headers
    )
    assert (bad_level.status_code, bad_level.json()["field"]) == (422, "level")
    paused = await client.post(grant.format("paused"), json={"reason": "x"}, headers=brand.headers)
    assert paused.status_code == 409
    missing = await client.post(grant.format("nope"), json={"reason": "x"}, headers=brand.headers)
    assert missing.status_code == 404
    empty = await client.post(grant.format("kudos"), json={"reason": ""}, headers=brand.headers)
    assert empty.status_code == 422
    shelf = (await client.get("/v1/members/m1/badges", headers=brand.headers)).json()
    assert [(e["key"], e["count"], e["level"]) for e in shelf["earned"]] == [("kudos", 2, ""), ("tiers", 1, "gold")]
    # another brand's key sees none of it
    other_brand = await make_brand(db, clock)
    assert (await client.get("/v1/members/m1/badges", headers=other_brand.headers)).status_code == 404
    assert (await client.get("/v1/badges/kudos", headers=other_brand.headers)).status_code == 404


async def test_open_badges_2_and_3_documents_with_required_fields(client, brand):
    await put_badge(
        client,
        brand,
        key="critic",
        name="Critic",
        description="Wrote reviews.",
        category="community",
        rule={"event_type": "review"},
        levels=[{"key": "bronze", "threshold": 1}],
    )
    await client.post(
        "/v1/members/",
        json={"external_id": "m1", "attributes": {"email": " Giulia@Example.com "}},
        headers=brand.headers,
    )
    (result,) = await send(client, brand, event("r1", "m1", "review", "2026-11-20T09:00:00Z"))
    uid = next(e["award"] for e in result["effects"] if e["type"] == "badge_awarded")
    slug = brand.brand.slug

    response = await client.get(f"/ob/v2/assertions/{uid}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/ld+json")
    assertion = response.json()
    assert assertion["@context"] == "https://w3id.org/openbadges/v2"
    assert (assertion["type"], assertion["id"]) == ("Assertion", f"{ORIGIN}/ob/v2/assertions/{uid}")
    assert assertion["issuedOn"] == "2026-11-20T09:00:00Z"
    assert assertion["verification"] == {"type": "HostedBadge"}
    recipient = assertion["recipient"]
    assert (recipient["type"], recipient["hashed"]) == ("email", True)
    expected = "sha256$" + hashlib.sha256(("giulia@example.com" + recipient["salt"]).encode()).hexdigest()
    assert recipient["identity"] == expected
    assert "giulia" not in response.text.lower()

    badge_class = (await client.get(local(assertion["badge"]))).json()
    assert {k: badge_class[k] for k in ("type", "id", "name", "description", "criteria", "issuer")} == {
        "type": "BadgeClass",
        "id": f"{ORIGIN}/ob/v2/badgeclasses/{slug}/critic/bronze",
        "name": "Critic — Bronze",
        "description": "Wrote reviews.",
        "criteria": {"narrative": "Bronze: record 1 review event."},
        "issuer": f"{ORIGIN}/ob/v2/issuers/{slug}",
    }
    image = await client.get(local(badge_class["image"]))
    assert (image.status_code, image.headers["content-type"]) == (200, "image/png")
    issuer = (await client.get(local(badge_class["issuer"]))).json()
    assert {k: issuer[k] for k in ("type", "id", "name")} == {
        "type": "Issuer",
        "id": badge_class["issuer"],
        "name": slug,
    }
    assert issuer["url"] == f"{ORIGIN}/"
    assert "@" in issuer["email"]
    plain_class = (await client.get(f"/ob/v2/badgeclasses/{slug}/critic")).json()
    assert plain_class["name"] == "Critic"

    credential = (await client.get(f"/ob/v3/credentials/{uid}")).json()
    assert credential["@context"] == [ob.VC2_CONTEXT, ob.OB3_CONTEXT]
    assert credential["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert (credential["id"], credential["name"], credential["validFrom"]) == (
        f"{ORIGIN}/ob/v3/credentials/{uid}",
        "Critic — Bronze",
        "2026-11-20T09:00:00Z",
    )
    assert credential["issuer"]["id"] == f"{ORIGIN}/ob/v3/issuers/{slug}"
    assert credential["issuer"]["type"] == ["Profile"]
    subject = credential["credentialSubject"]
    assert subject["id"].startswith("urn:uuid:")
    assert subject["type"] == ["AchievementSubject"]
    assert subject["identifier"] == [
        {
            "type": "IdentityObject",
            "identityType": "emailAddress",
            "hashed": True,
            "salt": recipient["salt"],
            "identityHash": expected,
        }
    ]
    achievement = subject["achievement"]
    assert (achievement["type"], achievement["name"], achievement["criteria"]) == (
        ["Achievement"],
        "Critic — Bronze",
        {"narrative": "Bronze: record 1 review event."},
    )
    assert (await client.get(local(achievement["id"]))).json()["id"] == achievement["id"]
    assert (await client.get(local(credential["issuer"]["id"]))).json()["type"] == ["Profile"]
    assert (await client.get("/ob/v2/assertions/" + "0" * 32)).status_code == 404
    assert (await client.get(f"/ob/v2/issuers/{slug}-nope")).status_code == 404


async def test_baked_png_and_svg_carry_the_assertion(client, brand):
    await put_badge(
        client,
        brand,
        key="regular",
        name="Regular",
        icon="cup",
        rule={"event_type": "visit"},
        levels=[{"key": "bronze", "threshold": 1}],
    )
    (result,) = await send(client, brand, event("v1", "m1", "visit", "2026-11-20T09:00:00Z"))
    uid = next(e["award"] for e in result["effects"] if e["type"] == "badge_awarded")
    assertion = (await client.get(f"/ob/v2/assertions/{uid}")).json()

    png = await client.get(f"/ob/v2/assertions/{uid}/baked.png")
    assert (png.status_code, png.headers["content-type"]) == (200, "image/png")
    assert png.headers["content-disposition"] == f'attachment; filename="regular-bronze-{uid[:8]}.png"'
    assert json.loads(ob.read_png_text(png.content)) == assertion
    Image.open(io.BytesIO(png.content)).verify()

    svg = await client.get(f"/ob/v2/assertions/{uid}/baked.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    verify, text = ob.read_svg_assertion(svg.text)
    assert verify == assertion["id"]
    assert json.loads(text) == assertion


async def test_badge_art_is_cached_and_hidden_art_stays_secret(client, brand):
    await put_badge(
        client,
        brand,
        key="regular",
        name="Regular",
        rule={"event_type": "visit"},
        levels=[{"key": "bronze", "threshold": 1}, {"key": "gold", "threshold": 3}],
    )
    await put_badge(client, brand, key="secret", name="Secret", hidden=True)
    slug = brand.brand.slug
    svg = await client.get(f"/art/{slug}/regular/image.svg?level=gold")
    assert svg.status_code == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.headers["cache-control"] == "public, max-age=600"
    assert svg.headers["content-security-policy"].startswith("default-src 'none'")
    assert "Regular — Gold" in svg.text
    etag = svg.headers["etag"]
    cached = await client.get(f"/art/{slug}/regular/image.svg?level=gold", headers={"If-None-Match": etag})
    assert (cached.status_code, cached.content, cached.headers["etag"]) == (304, b"", etag)
    bronze = await client.get(f"/art/{slug}/regular/image.svg?level=bronze")
    assert bronze.headers["etag"] != etag
    png = await client.get(f"/art/{slug}/regular/image.png?size=64")
    assert Image.open(io.BytesIO(png.content)).size == (64, 64)
    assert (await client.get(f"/art/{slug}/regular/image.png?size=5000")).status_code in (400, 422)
    assert (await client.get(f"/art/{slug}/regular/image.svg?level=platinum")).status_code == 404
    assert (await client.get(f"/art/{slug}/secret/image.svg")).status_code == 404
    assert (await client.get(f"/ob/v2/badgeclasses/{slug}/secret")).status_code == 404
    await client.post("/v1/members/", json={"external_id": "m1"}, headers=brand.headers)
    await client.post("/v1/members/m1/badges/secret/grant", json={"reason": "found it"}, headers=brand.headers)
    assert (await client.get(f"/art/{slug}/secret/image.svg")).status_code == 200


class CompletesChallenges:
    """A stand-in for the challenges processor: ``challenge`` events complete the challenge they name."""

    name = "challenges-stub"

    async def process(self, uow):
        for ctx in uow.events:
            if ctx.event.type == "challenge":
                props = ctx.event.properties
                ctx.emit(
                    ChallengeCompleted(
                        challenge=props["challenge"], instance=props.get("instance", ""), badge=props["badge"]
                    )
                )

    async def after_commit(self, uow):
        return None


async def test_challenge_completion_awards_the_reward_badge(backend, settings, redis, clock, db):
    from web.app import create_app

    steps = [PointsProcessor(), CompletesChallenges(), BadgesProcessor(public_url=settings.public_url)]
    # a real-Redis client is bound to the test's loop; the test client serves the app on another one
    app = create_app(settings, clock=clock, redis=redis if backend.endswith("fakeredis") else None, processors=steps)
    async with AsyncTestClient(app=app) as client:
        brand = await make_brand(db, clock)
        await put_badge(client, brand, key="critic", name="Critic", points=50)
        await put_badge(client, brand, key="streak-master", name="Streak master", repeatable=True)
        results = await send(
            client,
            brand,
            event("c1", "m1", "challenge", "2026-11-20T09:00:00Z", challenge="reviews", badge="critic"),
            event(
                "c2",
                "m1",
                "challenge",
                "2026-11-20T09:01:00Z",
                challenge="streak",
                instance="w47",
                badge="streak-master",
            ),
            event("c3", "m1", "challenge", "2026-11-20T09:02:00Z", challenge="reviews-again", badge="critic"),
            event(
                "c4",
                "m1",
                "challenge",
                "2026-11-20T09:03:00Z",
                challenge="streak",
                instance="w48",
                badge="streak-master",
            ),
        )
        assert [awarded(r) for r in results] == [
            [("critic", "", 1)],
            [("streak-master", "", 1)],
            [],
            [("streak-master", "", 2)],
        ]
        assert (await client.get("/v1/members/m1/points", headers=brand.headers)).json()["balance"] == 50
        assert client.app.state.services.grant_badge is not None


async def test_uploaded_images_are_checked_stored_and_served(client, brand):
    from badges.art import art_spec, render_png
    from badges.images import data_uri
    from badges.models import BadgeSpec, build_badge

    png = render_png(art_spec(build_badge(BadgeSpec(key="x", name="Uploaded")), level="", default_color="#aa0000"), 48)
    body = await put_badge(client, brand, key="custom", name="Custom", image=data_uri("image/png", png))
    assert body["uploaded_image"] is True
    served = await client.get(local(body["image_png"]))
    assert (served.status_code, served.content) == (200, png)
    wrapped = await client.get(local(body["image"]))
    assert data_uri("image/png", png) in wrapped.text
    unsafe = data_uri("image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>')
    refused = await client.put(
        "/v1/badges/bad", json={"key": "bad", "name": "Bad", "image": unsafe}, headers=brand.headers
    )
    assert (refused.status_code, refused.json()["field"]) == (422, "$.image")
    listed = (await client.get("/v1/badges", headers=brand.headers)).json()
    assert [(b["key"], b["uploaded_image"]) for b in listed] == [("custom", True)]
