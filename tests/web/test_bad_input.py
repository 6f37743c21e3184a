"""Bad input answers a 4xx problem naming the field, with nothing written (never a 500), on both backends."""

import logging

import msgspec
import pytest

from tests.helpers import event, row_counts

PROBLEM = "application/problem+json"
BIG = "1587493520674562380285345792"


@pytest.fixture
def settings(settings):
    """The default plausibility window (the suite's settings widen its future side)."""
    return msgspec.structs.replace(settings, event_max_future_seconds=300)


def assert_problem(response, status, field=None):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]
    if field is not None:
        assert problem["field"] == field, problem
    return problem


@pytest.mark.parametrize(
    ("properties", "field"),
    [
        ({"note": "a\u0000b"}, "$.properties.note"),
        ({"a\u0000b": 1}, "$.properties.a\\u0000b"),
        ({"deep": {"list": [1, {"x": "\u0000"}]}}, "$.properties.deep.list[1].x"),
    ],
)
async def test_nul_in_event_properties_is_refused(client, brand, db, properties, field):
    body = event("nul-1", "anna", "visit", "2026-11-20T09:00:00Z", **properties)
    before = await row_counts(db, brand.brand.id)
    response = await client.post("/v1/events", json=body, headers=brand.headers)
    assert_problem(response, 422, field)
    assert await row_counts(db, brand.brand.id) == before


async def test_nul_in_a_batch_names_the_event(client, brand, db):
    ok = event("nul-ok", "anna", "visit", "2026-11-20T09:00:00Z")
    bad = event("nul-bad", "bruno", "visit", "2026-11-20T09:00:00Z", name="x\u0000")
    response = await client.post("/v1/events", json={"events": [ok, bad]}, headers=brand.headers)
    assert_problem(response, 422, "$.events[1].properties.name")
    assert (await row_counts(db, brand.brand.id))["events"] == 0


async def test_an_escaped_backslash_before_u0000_is_plain_text(client, brand):
    body = event("not-nul", "anna", "visit", "2026-11-20T09:00:00Z", note="C:\\u0000")
    response = await client.post("/v1/events", json=body, headers=brand.headers)
    assert response.status_code == 200, response.text


async def test_nul_in_a_member_display_name_is_refused(client, brand, db):
    response = await client.post(
        "/v1/members", json={"external_id": "anna", "display_name": "An\u0000na"}, headers=brand.headers
    )
    assert_problem(response, 422, "$.display_name")
    assert (await row_counts(db, brand.brand.id))["members"] == 0


async def test_nul_in_a_webhook_topic_is_refused(client, brand):
    body = {"url": "https://example.com/hook", "topics": ["points\u0000"]}
    response = await client.post("/v1/webhooks", json=body, headers=brand.headers)
    assert_problem(response, 422, "$.topics[0]")
    listed = await client.get("/v1/webhooks", headers=brand.headers)
    assert listed.json() == []


async def test_nul_in_path_and_query_is_refused(client, brand):
    assert_problem(await client.get("/v1/members/an%00na", headers=brand.headers), 422, "external_id")
    response = await client.get("/v1/leaderboards/weekly", params={"around": "a\u0000"}, headers=brand.headers)
    assert_problem(response, 422, "around")


async def test_ids_beyond_64_bits_are_not_found_or_invalid(client, brand):
    assert_problem(await client.delete(f"/v1/webhooks/{BIG}", headers=brand.headers), 404, "endpoint_id")
    await client.post("/v1/members", json={"external_id": "anna"}, headers=brand.headers)
    response = await client.get(
        "/v1/members/anna/points", params={"before": "46684801734650137157669828427776"}, headers=brand.headers
    )
    assert_problem(response, 422, "before")
    for path, name in (("/v1/program", "version"), ("/v1/program/versions", "limit")):
        response = await client.get(path, params={name: "-" + BIG}, headers=brand.headers)
        assert_problem(response, 422, name)
    response = await client.get("/v1/program", params={"version": "9" * 10_001}, headers=brand.headers)
    assert_problem(response, 422, "version")


async def test_a_single_valued_query_parameter_given_twice_is_refused(client, brand):
    params = [("campaign", "a"), ("campaign", "b")]
    assert_problem(await client.get("/v1/challenges", params=params, headers=brand.headers), 422, "campaign")
    once = await client.get("/v1/challenges", params={"campaign": "a"}, headers=brand.headers)
    assert once.status_code == 200


@pytest.mark.parametrize(
    ("at", "reason"),
    [
        ("9999-12-31T23:59:59Z", "in the future"),
        ("2026-11-20T10:06:00Z", "in the future"),  # the frozen clock is 10:00; 5 minutes of skew are allowed
        ("2025-11-19T10:00:00Z", "older than"),
        ("0001-01-01T00:00:00Z", "older than"),
    ],
)
async def test_implausible_occurred_at_is_refused(client, brand, db, at, reason):
    response = await client.post("/v1/events", json=event("when", "anna", "visit", at), headers=brand.headers)
    problem = assert_problem(response, 422, "$.occurred_at")
    assert reason in problem["detail"]
    batch = {"events": [event("w1", "anna", "visit", "2026-11-20T09:00:00Z"), event("w2", "anna", "visit", at)]}
    response = await client.post("/v1/events", json=batch, headers=brand.headers)
    assert_problem(response, 422, "$.events[1].occurred_at")
    assert await row_counts(db, brand.brand.id) == {"members": 0, "events": 0, "ledger": 0, "outbox": 0}


async def test_the_window_edges_are_accepted(client, brand):
    for event_id, at in (("edge-future", "2026-11-20T10:05:00Z"), ("edge-old", "2025-11-20T10:00:00Z")):
        response = await client.post("/v1/events", json=event(event_id, "anna", "visit", at), headers=brand.headers)
        assert response.status_code == 200, response.text


async def test_the_brand_event_window_command_widens_the_age_window(client, brand, settings, monkeypatch):
    import asyncio

    from click.testing import CliRunner

    from engine.tenants import KeyCache
    from web.cli import cli

    body = event("old", "anna", "visit", "2024-06-01T00:00:00Z")
    assert (await client.post("/v1/events", json=body, headers=brand.headers)).status_code == 422
    for name, value in (
        ("DATABASE_URL", settings.database_url),
        ("REDIS_URL", settings.redis_url),
        ("REDIS_NAMESPACE", settings.redis_namespace),
        ("KEY_CACHE_SECONDS", "0"),
    ):
        monkeypatch.setenv(f"QUESTLINE_{name}", value)
    args = ["brand", "event-window", brand.brand.slug, "--max-age-days", "1000"]
    result = await asyncio.to_thread(CliRunner().invoke, cli, args)
    assert result.exit_code == 0, result.output
    KeyCache.clear_all()  # servers trust a resolved key (and its brand) for QUESTLINE_KEY_CACHE_SECONDS
    response = await client.post("/v1/events", json=body, headers=brand.headers)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_a_json_endpoint_refuses_other_content_types(client, brand, db, content_type):
    import json

    headers = dict(brand.headers)
    if content_type:
        headers["Content-Type"] = content_type
    body = json.dumps(event("ct", "anna", "visit", "2026-11-20T09:00:00Z")).encode()
    for path in ("/v1/events", "/v1/members"):
        response = await client.post(path, content=body, headers=headers)
        assert_problem(response, 415)
    assert await row_counts(db, brand.brand.id) == {"members": 0, "events": 0, "ledger": 0, "outbox": 0}


async def test_json_with_a_charset_or_a_json_suffix_is_accepted(client, brand):
    import json

    body = json.dumps(event("cs", "anna", "visit", "2026-11-20T09:00:00Z")).encode()
    for index, content_type in enumerate(("application/json; charset=utf-8", "application/vnd.questline+json")):
        headers = {**brand.headers, "Content-Type": content_type}
        response = await client.post(
            "/v1/events", content=body.replace(b'"cs"', f'"cs{index}"'.encode()), headers=headers
        )
        assert response.status_code == 200, response.text


async def test_an_unexpected_error_is_a_logged_problem(client, brand, monkeypatch, caplog):
    from engine import members

    async def broken(*args, **kwargs):
        raise RuntimeError("boom in the repository")

    monkeypatch.setattr(members, "get_member", broken)
    with caplog.at_level(logging.ERROR, logger="questline.errors"):
        response = await client.get("/v1/members/anna", headers=brand.headers)
    problem = assert_problem(response, 500)
    assert "boom" not in response.text and problem["type"].endswith("internal-error")
    records = [r for r in caplog.records if r.name == "questline.errors"]
    assert records and records[0].exc_info and "boom in the repository" in str(records[0].exc_info[1])


async def test_nul_in_a_program_document_is_refused_in_json_and_yaml(client, brand):
    rule = {"key": "visit", "event_type": "visit\u0000", "points": 10}
    response = await client.put("/v1/program", json={"earning_rules": [rule]}, headers=brand.headers)
    assert_problem(response, 422, "$.earning_rules[0].event_type")
    yaml_body = b'earning_rules:\n  - key: visit\n    event_type: "visit\\0"\n    points: 10\n'
    headers = {**brand.headers, "Content-Type": "application/yaml"}
    response = await client.put("/v1/program", content=yaml_body, headers=headers)
    assert_problem(response, 422, "$.earning_rules[0].event_type")
    assert (await client.get("/v1/earning-rules", headers=brand.headers)).json() == []


async def test_malformed_json_is_a_problem(client, brand):
    headers = {**brand.headers, "Content-Type": "application/json"}
    for path in ("/v1/members", "/v1/webhooks", "/v1/events"):
        response = await client.post(path, content=b'{"external_id": "a\\u0000', headers=headers)
        assert response.status_code in (400, 422), (path, response.text)
        assert response.headers["content-type"].startswith(PROBLEM)


async def test_the_events_key_is_checked_before_the_body(client):
    body = event("k", "anna", "visit", "2026-11-20T09:00:00Z", note="\u0000")
    response = await client.post("/v1/events", json=body)
    assert_problem(response, 401)


async def test_a_malformed_webhook_url_is_a_clear_422(client, brand):
    # found by the OpenAPI contract test: an unbalanced "[" made urlsplit raise inside the address check
    answer = await client.post("/v1/webhooks", json={"url": "http://cy6\u00a3[Op"}, headers=brand.headers)
    assert answer.status_code == 422 and answer.json()["field"] == "$.url"
