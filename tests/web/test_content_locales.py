"""Brands' own content per locale: given per locale or as a plain string, stored, exported back, shown in the member's language."""

from __future__ import annotations

import pytest

from tests.helpers import event

PROGRAM = {
    "campaigns": [{"key": "coffee", "title": {"en": "Coffee month", "it": "Mese del caffè"}}],
    "challenges": [
        {
            "key": "lover",
            "campaign": "coffee",
            "title": {"en": "Coffee lover", "it": "Amante del caffè"},
            "description": {"en": "Three coffees.", "it": "Tre caffè."},
            "rule": {"type": "count", "event_type": "visit", "target": 3},
            "reward": {"badge": "barista"},
        },
        {
            "key": "plain",
            "campaign": "coffee",
            "title": "Plain title",
            "rule": {"type": "count", "event_type": "visit", "target": 9},
        },
    ],
    "badges": [
        {"key": "barista", "name": {"en": "Barista", "it": "Barista provetto"}, "description": {"it": "Solo italiano"}},
        {"key": "plain-badge", "name": "Plain badge", "rule": {"event_type": "visit", "count": 5}},
    ],
    "leaderboards": [
        {"key": "weekly", "title": {"en": "Top coffee drinkers", "it": "Più caffè"}, "metric": {"kind": "points"}},
    ],
    "tiers": {
        "levels": [
            {"key": "base", "name": "Base"},
            {"key": "gold", "name": {"en": "Gold", "it": "Oro"}, "threshold": 100},
        ]
    },
}


async def apply(client, brand, document):
    response = await client.put("/v1/program", json=document, headers=brand.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def enrol(client, brand, external_id, locale):
    response = await client.post(
        "/v1/members", json={"external_id": external_id, "locale": locale}, headers=brand.headers
    )
    assert response.status_code in (200, 201), response.text


async def test_the_program_document_round_trips_texts_per_locale_and_plain(client, brand):
    await apply(client, brand, PROGRAM)
    exported = (await client.get("/v1/program", headers=brand.headers)).json()
    assert exported["campaigns"][0]["title"] == PROGRAM["campaigns"][0]["title"]
    assert [c["title"] for c in exported["challenges"]] == [c["title"] for c in PROGRAM["challenges"]]
    assert exported["challenges"][0]["description"] == {"en": "Three coffees.", "it": "Tre caffè."}
    badges = {b["key"]: b for b in exported["badges"]}
    assert badges["barista"]["name"] == {"en": "Barista", "it": "Barista provetto"}
    assert badges["barista"]["description"] == {"it": "Solo italiano"}
    assert badges["plain-badge"]["name"] == "Plain badge"
    assert exported["leaderboards"][0]["title"] == {"en": "Top coffee drinkers", "it": "Più caffè"}
    assert [t["name"] for t in exported["tiers"]["levels"]] == ["Base", {"en": "Gold", "it": "Oro"}]
    assert (await apply(client, brand, exported))["changes"] == []  # exported as given: applying it changes nothing
    yaml_text = (await client.get("/v1/program", params={"format": "yaml"}, headers=brand.headers)).text
    assert "Amante del caffè" in yaml_text


@pytest.mark.parametrize(
    ("locale", "title", "campaign", "description", "badge"),
    [
        ("it", "Amante del caffè", "Mese del caffè", "Tre caffè.", "Barista provetto"),
        ("it-IT", "Amante del caffè", "Mese del caffè", "Tre caffè.", "Barista provetto"),
        ("en", "Coffee lover", "Coffee month", "Three coffees.", "Barista"),
        ("fr", "Coffee lover", "Coffee month", "Three coffees.", "Barista"),  # no French: the default locale
    ],
)
async def test_members_see_content_in_their_language(client, brand, locale, title, campaign, description, badge):
    await apply(client, brand, PROGRAM)
    await enrol(client, brand, "m", locale)
    await client.post(
        "/v1/events",
        json={"events": [event(f"v{i}", "m", "visit", f"2026-11-0{i + 2}T10:00:00Z") for i in range(3)]},
        headers=brand.headers,
    )
    challenges = {c["key"]: c for c in (await client.get("/v1/members/m/challenges", headers=brand.headers)).json()}
    lover = challenges["lover"]
    assert (lover["title"], lover["campaign_title"], lover["description"]) == (title, campaign, description)
    assert challenges["plain"]["title"] == "Plain title"  # plain strings are shown as written
    shelf = (await client.get("/v1/members/m/badges", headers=brand.headers)).json()
    assert [b["name"] for b in shelf["earned"]] == [badge]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"key": "x", "campaign": "coffee", "title": {}, "rule": {"type": "first", "event_type": "visit"}},
            "$.challenges[0].title",
        ),
        (
            {
                "key": "x",
                "campaign": "coffee",
                "title": {"english": "X"},
                "rule": {"type": "first", "event_type": "visit"},
            },
            "$.title",
        ),
        (
            {"key": "x", "campaign": "coffee", "title": {"it": ""}, "rule": {"type": "first", "event_type": "visit"}},
            "$.title",
        ),
    ],
)
async def test_bad_texts_per_locale_answer_422(client, brand, body, field):
    await apply(client, brand, {"campaigns": PROGRAM["campaigns"]})
    response = await client.put("/v1/challenges/x", json=body, headers=brand.headers)
    assert response.status_code == 422, response.text
    assert response.json()["field"].startswith(field), response.json()
    assert (await client.get("/v1/challenges/x", headers=brand.headers)).status_code == 404


async def test_the_italian_portal_shows_italian_content(client, brand):
    from tests.web.test_pages import open_portal

    await apply(client, brand, PROGRAM)
    await enrol(client, brand, "m1", "it")
    await client.post(
        "/v1/events", json={"events": [event("v1", "m1", "visit", "2026-11-02T10:00:00Z")]}, headers=brand.headers
    )
    await open_portal(client, brand, "m1")
    page = (await client.get("/portal/challenges")).text
    assert "Amante del caffè" in page
    assert "Coffee lover" not in page
    assert "Tre caffè." in page
    english = (await client.get("/portal/challenges?lang=en")).text
    assert "Coffee lover" in english
    boards = (await client.get("/portal/leaderboards?lang=it")).text
    assert "Più caffè" in boards
    badges = (await client.get("/portal/badges?lang=it")).text
    assert "Barista provetto" in badges


async def test_a_console_edit_keeps_the_other_locales_and_the_prerequisites(client, brand, db, clock):
    import uuid

    from engine.admins import create_admin
    from tests.web.test_console import GOOD_CAMPAIGN, PASSWORD, post_form, sign_in

    email = f"admin-{uuid.uuid4().hex[:8]}@brand.example"
    await create_admin(db, brand_id=brand.brand.id, email=email, password=PASSWORD, name="Ada", now=clock.now())
    document = {
        "campaigns": PROGRAM["campaigns"],
        "challenges": [
            {**PROGRAM["challenges"][1], "key": "starter"},
            {**PROGRAM["challenges"][0], "requires": {"challenges": ["starter"]}},
        ],
    }
    await apply(client, brand, document)
    await sign_in(client, email)
    edited = await post_form(
        client,
        "/console/challenges/lover",
        {
            **GOOD_CAMPAIGN,
            "c_key": "coffee",
            "ch_key": "lover",
            "ch_event_type": "visit",
            "ch_filter": "",
            "ch_title": "Coffee fan",
        },
    )
    assert edited.status_code == 303, edited.text[-2000:]
    stored = (await client.get("/v1/challenges/lover", headers=brand.headers)).json()["challenge"]
    assert stored["title"] == {"en": "Coffee fan", "it": "Amante del caffè"}
    assert stored["requires"] == {"challenges": ["starter"]}
    assert stored["rule"]["target"] == 3  # the form's values were saved


async def test_names_shown_in_another_language_than_the_page_are_marked_with_lang(client, brand):
    from tests.web.test_pages import open_portal

    document = {
        "badges": [
            {"key": "english-only", "name": {"en": "Early bird"}, "rule": {"event_type": "visit", "count": 1}},
            {
                "key": "both",
                "name": {"en": "Barista", "it": "Barista provetto"},
                "rule": {"event_type": "visit", "count": 9},
            },
            {"key": "plain", "name": "Plain badge", "rule": {"event_type": "visit", "count": 9}},
        ],
        "leaderboards": [{"key": "weekly", "title": {"en": "Top coffee drinkers"}, "metric": {"kind": "points"}}],
    }
    await apply(client, brand, document)
    await enrol(client, brand, "m1", "it")
    await client.post(
        "/v1/events", json={"events": [event("v1", "m1", "visit", "2026-11-02T10:00:00Z")]}, headers=brand.headers
    )
    await open_portal(client, brand, "m1")
    badges = (await client.get("/portal/badges?lang=it")).text
    assert '<h3><span lang="en">Early bird</span></h3>' in badges
    assert "Barista provetto" in badges and '<span lang="en">Barista' not in badges  # in the page's language
    assert "Plain badge" in badges and '<span lang="en">Plain badge' not in badges  # language unknown: unmarked
    boards = (await client.get("/portal/leaderboards?lang=it")).text
    assert '<h2 id="board-weekly"><span lang="en">Top coffee drinkers</span></h2>' in boards
    home = (await client.get("/portal?lang=it")).text
    assert '“<span lang="en">Top coffee drinkers</span>”' in home  # inside an Italian sentence too
    english = (await client.get("/portal/badges?lang=en")).text
    assert "Early bird" in english and 'lang="en">Early bird' not in english  # the page's own language
    token = (await client.post("/v1/members/m1/widget-token", json={}, headers=brand.headers)).json()["token"]
    shelf = (await client.get(f"/widgets/badges?key={brand.publishable}&member={token}&lang=it")).text
    assert '<h3><span lang="en">Early bird</span></h3>' in shelf
    board = (await client.get(f"/widgets/leaderboard/weekly?key={brand.publishable}&lang=it")).text
    assert '<h1 id="w-title"><span lang="en">Top coffee drinkers</span></h1>' in board
