"""Wallet passes over HTTP, on both backends: settings, a member's pass, the PassKit update flow, Google links."""

import dataclasses
import io
import json
import uuid
import zipfile
from email.utils import formatdate

import jwt
from cryptography import x509

from leaderboards.service import Leaderboards
from tests.helpers import event
from tests.wallet_chain import PASS_TYPE, apple_settings, chain, google_settings
from wallet.push import RecordingPusher
from web.pages.wallet_cards import passkit_of

PUSH = "f" * 64


def _device() -> str:
    """A device library identifier of its own per test (the database is shared by a session's tests)."""
    return uuid.uuid4().hex


async def _setup(client, brand):
    put = await client.put("/v1/wallet/apple", json=apple_settings(), headers=brand.headers)
    assert put.status_code == 201, put.text
    rule = {"key": "buy", "event_type": "purchase", "per_unit": {"property": "amount"}}
    assert (await client.put("/v1/earning-rules/buy", json=rule, headers=brand.headers)).status_code in (200, 201)
    first = {"events": [event("e1", "m-1", "purchase", "2026-11-20T09:00:00Z", amount=40)]}
    assert (await client.post("/v1/events", json=first, headers=brand.headers)).status_code in (200, 201)


def _card(data: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return json.loads(archive.read("pass.json"))


async def test_settings_are_checked_and_keys_never_answered(client, brand):
    foreign = await client.put(
        "/v1/wallet/apple", json=apple_settings(private_key_pem=chain().other_key_pem), headers=brand.headers
    )
    assert foreign.status_code == 422 and foreign.json()["field"] == "$.private_key_pem"
    assert (await client.get("/v1/wallet", headers=brand.headers)).json() == {"apple": None, "google": None}
    assert (await client.put("/v1/wallet/apple", json=apple_settings(), headers=brand.headers)).status_code == 201
    again = await client.put("/v1/wallet/apple", json=apple_settings(barcode="code128"), headers=brand.headers)
    assert again.status_code == 200 and again.json()["barcode"] == "code128"
    assert (await client.put("/v1/wallet/google", json=google_settings(), headers=brand.headers)).status_code == 201
    status = await client.get("/v1/wallet", headers=brand.headers)
    assert "PRIVATE KEY" not in status.text and status.json()["apple"]["pass_type_identifier"] == PASS_TYPE
    assert (await client.delete("/v1/wallet/google", headers=brand.headers)).status_code == 204
    assert (await client.delete("/v1/wallet/google", headers=brand.headers)).status_code == 404
    missing = await client.get("/v1/members/nobody/wallet/google", headers=brand.headers)
    assert missing.status_code == 404


async def test_passkit_update_flow(client, brand, db, redis, settings, clock):
    await _setup(client, brand)
    device = _device()
    pusher = RecordingPusher()
    # The refresh job's work, run here on the test's own loop (PostgreSQL: the app's pool lives on another loop).
    app_services = client.app.state.services
    boards = Leaderboards(
        db, redis, namespace=settings.redis_namespace, clock=clock, grant_badge=app_services.grant_badge
    )
    services = dataclasses.replace(app_services, db=db, redis=redis, leaderboards=boards, wallet_pusher=pusher)
    download = await client.get("/v1/members/m-1/wallet/apple", headers=brand.headers)
    assert download.status_code == 200 and download.headers["content-type"] == "application/vnd.apple.pkpass"
    card = _card(download.content)
    assert card["storeCard"]["headerFields"][0]["value"] == 40
    serial, token = card["serialNumber"], card["authenticationToken"]
    assert card["webServiceURL"].endswith("/passkit")
    auth = {"Authorization": f"ApplePass {token}"}
    path = f"/passkit/v1/devices/{device}/registrations/{PASS_TYPE}/{serial}"

    wrong = await client.post(path, json={"pushToken": PUSH}, headers={"Authorization": "ApplePass " + "x" * 32})
    assert wrong.status_code == 401
    assert (await client.post(path, json={"pushToken": PUSH})).status_code == 401
    assert (await client.post(path, json={"pushToken": PUSH}, headers=auth)).status_code == 201
    assert (await client.post(path, json={"pushToken": PUSH}, headers=auth)).status_code == 200

    listing = f"/passkit/v1/devices/{device}/registrations/{PASS_TYPE}"
    first = await client.get(listing)
    assert first.status_code == 200 and first.json()["serialNumbers"] == [serial]
    tag = first.json()["lastUpdated"]
    assert (await client.get(listing, params={"passesUpdatedSince": tag})).status_code == 204
    assert await passkit_of(services).refresh_all() == 0 and pusher.sent == []  # nothing changed: no push

    pass_url = f"/passkit/v1/passes/{PASS_TYPE}/{serial}"
    current = await client.get(pass_url, headers=auth)
    assert current.status_code == 200
    unchanged = await client.get(pass_url, headers={**auth, "If-Modified-Since": current.headers["last-modified"]})
    assert unchanged.status_code == 304

    more = {"events": [event("e2", "m-1", "purchase", "2026-11-20T09:30:00Z", amount=25)]}
    assert (await client.post("/v1/events", json=more, headers=brand.headers)).status_code in (200, 201)
    assert await passkit_of(services).refresh_all() == 1
    assert pusher.sent == [(PASS_TYPE, PUSH)]
    changed = await client.get(listing, params={"passesUpdatedSince": tag})
    assert changed.status_code == 200 and changed.json()["serialNumbers"] == [serial]
    assert int(changed.json()["lastUpdated"]) > int(tag)
    fresh = await client.get(pass_url, headers={**auth, "If-Modified-Since": current.headers["last-modified"]})
    assert fresh.status_code == 200 and _card(fresh.content)["storeCard"]["headerFields"][0]["value"] == 65
    assert (await client.get(pass_url, headers={"Authorization": "ApplePass " + "y" * 32})).status_code == 401
    old = formatdate(0, usegmt=True)
    assert (await client.get(pass_url, headers={**auth, "If-Modified-Since": old})).status_code == 200

    assert (await client.post("/passkit/v1/log", json={"logs": ["something went wrong"]})).status_code == 200
    assert (await client.delete(path, headers={"Authorization": "ApplePass " + "z" * 32})).status_code == 401
    assert (await client.delete(path, headers=auth)).status_code == 200
    assert (await client.get(listing)).status_code == 204
    bad_tag = await client.get(listing, params={"passesUpdatedSince": "yesterday"})
    assert bad_tag.status_code == 422

    # erasing the member removes the pass and its registrations
    assert (await client.post(path, json={"pushToken": PUSH}, headers=auth)).status_code == 201
    assert (await client.delete("/v1/members/m-1", headers=brand.headers)).status_code == 204
    assert (await client.get(pass_url, headers=auth)).status_code == 401
    assert (await client.get(listing)).status_code == 204


async def test_portal_offers_only_the_wallets_the_brand_configured(client, brand):
    from tests.web.test_pages import open_portal

    await _setup(client, brand)
    await open_portal(client, brand, "m-1")
    home = await client.get("/portal")
    assert 'id="wallet-link"' in home.text
    page = await client.get("/portal/wallet?lang=it")
    assert page.status_code == 200
    assert "Aggiungi a Apple Wallet" in page.text and "save-google-wallet" not in page.text
    assert 'data-live="balance-big">40<' in page.text
    download = await client.get("/portal/wallet/apple.pkpass")
    assert download.status_code == 200 and _card(download.content)["barcodes"][0]["message"] == "m-1"
    assert (await client.get("/portal/wallet/google", follow_redirects=False)).status_code == 404
    assert (await client.put("/v1/wallet/google", json=google_settings(), headers=brand.headers)).status_code == 201
    assert "save-google-wallet" in (await client.get("/portal/wallet")).text
    saved = await client.get("/portal/wallet/google", follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"].startswith("https://pay.google.com/gp/v/save/")
    answered = await client.get("/v1/members/m-1/wallet/google", headers=brand.headers)
    assert answered.status_code == 200, answered.text
    public = x509.load_pem_x509_certificate(chain().cert_pem.encode()).public_key()
    claims = jwt.decode(answered.json()["save_url"].rsplit("/", 1)[1], public, algorithms=["RS256"], audience="google")
    (obj,) = claims["payload"]["loyaltyObjects"]
    assert (obj["accountId"], obj["loyaltyPoints"]["balance"]["int"]) == ("m-1", 40)


async def test_another_members_overtaking_changes_the_pass_and_its_challenge_progress_shows(client, brand):
    program = {
        "campaigns": [{"key": "nov", "title": "November", "starts_at": "2026-11-01", "ends_at": "2026-12-01"}],
        "challenges": [
            {"key": "five-buys", "campaign": "nov", "title": "Five purchases",
             "rule": {"type": "count", "event_type": "purchase", "target": 5}, "reward": {"points": 10}},
        ],
        "leaderboards": [{"key": "all", "title": "Top spenders", "metric": {"kind": "points"}, "period": "all_time"}],
        "earning_rules": [{"key": "buy", "event_type": "purchase", "per_unit": {"property": "amount"}}],
    }  # fmt: skip
    assert (await client.put("/v1/program", json=program, headers=brand.headers)).status_code == 200
    assert (await client.put("/v1/wallet/apple", json=apple_settings(), headers=brand.headers)).status_code == 201
    first = [event("a", "m-1", "purchase", "2026-11-20T09:00:00Z", amount=40),
             event("b", "m-2", "purchase", "2026-11-20T09:01:00Z", amount=10)]  # fmt: skip
    assert (await client.post("/v1/events", json={"events": first}, headers=brand.headers)).status_code == 200
    card = _card((await client.get("/v1/members/m-1/wallet/apple", headers=brand.headers)).content)
    fields = {f["key"]: f for f in card["storeCard"]["secondaryFields"]}
    assert (fields["rank"]["label"], fields["rank"]["value"]) == ("Top spenders", "#1 / 2")
    assert card["storeCard"]["auxiliaryFields"][0] == {
        "key": "challenge",
        "label": "Five purchases",
        "value": "1 / 5 times",
    }
    auth = {"Authorization": f"ApplePass {card['authenticationToken']}"}
    device = _device()
    path = f"/passkit/v1/devices/{device}/registrations/{PASS_TYPE}/{card['serialNumber']}"
    assert (await client.post(path, json={"pushToken": PUSH}, headers=auth)).status_code == 201
    listing = f"/passkit/v1/devices/{device}/registrations/{PASS_TYPE}"
    tag = (await client.get(listing)).json()["lastUpdated"]
    overtaking = [event("c", "m-2", "purchase", "2026-11-20T09:05:00Z", amount=100)]
    assert (await client.post("/v1/events", json={"events": overtaking}, headers=brand.headers)).status_code == 200
    changed = await client.get(listing, params={"passesUpdatedSince": tag})  # no push, no event of m-1's
    assert changed.status_code == 200 and changed.json()["serialNumbers"] == [card["serialNumber"]]
    fresh = _card((await client.get(f"/passkit/v1/passes/{PASS_TYPE}/{card['serialNumber']}", headers=auth)).content)
    assert {f["key"]: f["value"] for f in fresh["storeCard"]["secondaryFields"]}["rank"] == "#2 / 2"
    assert fresh["storeCard"]["headerFields"][0]["value"] == 40
