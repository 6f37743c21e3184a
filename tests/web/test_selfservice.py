"""Self-service portal pages: invite, profile, privacy, export, erasure request completed in the console."""

from __future__ import annotations

import json

from tests.web.test_pages import enrol, portal_link


async def enter(client, brand, external_id="m1"):
    await enrol(client, brand, external_id, name="Giulia Rossi", locale="en")
    path = await portal_link(client, brand, external_id)
    assert (await client.get(path, follow_redirects=False)).status_code == 303


def csrf(client) -> str:
    return str(client.cookies.get("ql_csrf"))


async def test_invite_page_shows_link_and_counts(client, brand):
    await client.put(
        "/v1/referrals/policy",
        json={"event": "purchase", "referrer_points": 200, "friend_points": 100},
        headers=brand.headers,
    )
    await enter(client, brand)
    page = await client.get("/portal/invite")
    assert page.status_code == 200
    link = (await client.get("/v1/referrals/members/m1", headers=brand.headers)).json()["url"]
    assert link in page.text and 'id="share-button"' in page.text
    assert "you get 200 points" in page.text


async def test_profile_privacy_export_and_erasure(client, brand):
    await enter(client, brand)
    account = await client.get("/portal/account")
    assert account.status_code == 200 and "Giulia Rossi" in account.text
    saved = await client.post(
        "/portal/account/profile", data={"display_name": "Giuly", "locale": "it", "_csrf_token": csrf(client)},
        follow_redirects=False,
    )  # fmt: skip
    assert saved.status_code == 303
    member = (await client.get("/v1/members/m1", headers=brand.headers)).json()
    assert (member["display_name"], member["locale"]) == ("Giuly", "it")
    private = await client.post(
        "/portal/account/privacy",
        data={"opt_out": "yes", "display": "pseudonym", "pseudonym": "Fox", "_csrf_token": csrf(client)},
        follow_redirects=False,
    )
    assert private.status_code == 303
    preference = await client.get("/v1/leaderboard-preferences/m1", headers=brand.headers)
    if preference.status_code == 200:
        assert preference.json()["opt_out"] is True and preference.json()["pseudonym"] == "Fox"
    assert 'value="Fox"' in (await client.get("/portal/account")).text
    export = await client.get("/portal/account/export")
    assert export.status_code == 200 and "attachment" in export.headers["content-disposition"]
    exported = json.loads(export.content)
    assert exported["member"]["external_id"] == "m1"
    assert exported["sections"]["enrollment"] == {"email": None, "joined_via": "", "consents": []}
    refused = await client.post("/portal/account/erase", data={"_csrf_token": csrf(client)}, follow_redirects=False)
    assert refused.status_code == 422
    asked = await client.post(
        "/portal/account/erase", data={"confirm": "yes", "_csrf_token": csrf(client)}, follow_redirects=False
    )
    assert asked.status_code == 303
    assert "richiesta di cancellazione" in (await client.get("/portal/account")).text  # the member chose Italian
    pending = (await client.get("/v1/erasure-requests", headers=brand.headers)).json()
    assert [p["member"] for p in pending] == ["m1"]
    done = await client.post(f"/v1/erasure-requests/{pending[0]['id']}/complete", headers=brand.headers)
    assert done.status_code == 200
    assert (await client.get("/v1/members/m1", headers=brand.headers)).status_code == 404
    assert (await client.get("/v1/erasure-requests", headers=brand.headers)).json() == []
