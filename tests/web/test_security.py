"""Security of the running app: start-up refusals, single-use links, sessions ended server-side, tokens kept
out of logs, keys kept out of URLs, and the headers every answer carries."""

import base64
import logging
from datetime import datetime

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from engine.errors import ValidationError
from engine.settings import DEFAULT_SECRET, load_settings, refuse_unsafe, unsafe_reasons
from tests.web.test_pages import enrol, portal_link, set_cookie

PG = "postgresql+asyncpg://questline@db.internal/questline"


# --- start-up ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"QUESTLINE_DATABASE_URL": PG}, "QUESTLINE_SECRET"),  # the default secret
        ({"QUESTLINE_DATABASE_URL": PG, "QUESTLINE_SECRET": "short-but-not-default"}, "QUESTLINE_SECRET"),
        ({"QUESTLINE_REDIS_URL": "redis://cache:6379/0", "QUESTLINE_SECRET": "x" * 31}, "QUESTLINE_SECRET"),
        ({"QUESTLINE_DATABASE_URL": PG, "QUESTLINE_SECRET": "s" * 40, "QUESTLINE_DEMO": "true"}, "QUESTLINE_DEMO"),
    ],
)
def test_the_server_refuses_to_start_outside_the_embedded_default_with_guessable_settings(env, field):
    settings = load_settings(env)
    with pytest.raises(ValidationError, match="refusing to start") as refused:
        refuse_unsafe(settings)
    assert refused.value.field == field
    from web.app import create_app

    with pytest.raises(ValidationError, match="refusing to start"):
        create_app(settings)


def test_the_embedded_default_and_a_long_secret_start():
    assert unsafe_reasons(load_settings({})) == []  # SQLite + in-process Redis: the default secret is fine
    assert unsafe_reasons(load_settings({"QUESTLINE_DEMO": "true"})) == []
    strong = load_settings({"QUESTLINE_DATABASE_URL": PG, "QUESTLINE_SECRET": "k" * 32})
    assert unsafe_reasons(strong) == []
    assert DEFAULT_SECRET not in " ".join(unsafe_reasons(load_settings({"QUESTLINE_DATABASE_URL": PG})))


# --- portal links and sessions -------------------------------------------------------------------------------


async def test_a_portal_link_opens_the_portal_once(client, brand):
    await enrol(client, brand)
    path = await portal_link(client, brand, expires_in=3600)
    first = await client.get(path, follow_redirects=False)
    assert first.status_code == 303
    client.cookies.clear()
    again = await client.get(path, follow_redirects=False)
    assert again.status_code == 401
    assert not any(k == "set-cookie" and v.startswith("ql_member=") for k, v in again.headers.multi_items())


async def test_portal_links_default_to_a_day_and_wait_a_week_at_most(client, brand, clock):
    await enrol(client, brand)
    made = await client.post("/v1/members/m1/portal-link", json={}, headers=brand.headers)
    expires = msgspec.convert(made.json()["expires_at"], type=datetime)
    assert (expires - clock.now()).total_seconds() == pytest.approx(86400, abs=1)
    too_long = await client.post("/v1/members/m1/portal-link", json={"expires_in": 8 * 86400}, headers=brand.headers)
    assert too_long.status_code == 422


async def test_signing_out_ends_the_session_for_a_copied_cookie_too(client, brand):
    await enrol(client, brand)
    entered = await client.get(await portal_link(client, brand), follow_redirects=False)
    copied = set_cookie(entered, "ql_member").split(";")[0].split("=", 1)[1]
    assert (await client.get("/portal")).status_code == 200
    out = await client.post("/portal/signout", data={"_csrf_token": client.cookies.get("ql_csrf")})
    assert out.status_code in (200, 303)
    client.cookies.set("ql_member", copied)
    assert (await client.get("/portal", follow_redirects=False)).status_code == 401


async def test_the_link_token_never_reaches_the_access_log(client, brand, caplog):
    await enrol(client, brand)
    path = await portal_link(client, brand)
    token = path.removeprefix("/portal/enter/")
    with caplog.at_level(logging.INFO, logger="questline.access"):
        assert (await client.get(path, follow_redirects=False)).status_code == 303
    access = [r for r in caplog.records if r.name == "questline.access"]
    assert access, "the request was logged"
    logged = " ".join(str(r.msg) + r.getMessage() for r in access)
    assert token not in logged and token.split(".")[0] not in logged
    assert "/portal/enter/[redacted]" in logged


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/portal/enter/eyJiIjoxfQ.sig", "/portal/enter/[redacted]"),
        ("/join/demo/confirm/tok-123", "/join/demo/confirm/[redacted]"),
        ("/unsubscribe/eyJ1IjoxfQ.sig", "/unsubscribe/[redacted]"),
        ("/join/demo/sign-in", "/join/demo/sign-in"),
        ("/portal/badges", "/portal/badges"),
    ],
)
def test_every_link_token_is_redacted_from_logged_paths(path, logged):
    from web.logs import redact_path

    assert redact_path(path) == logged


# --- keys, headers, cookies ----------------------------------------------------------------------------------


async def test_secret_keys_are_refused_in_the_url(client, brand):
    await enrol(client, brand)
    in_url = await client.get(f"/v1/members/m1?key={brand.secret}")
    assert in_url.status_code == 401
    assert "URL" in in_url.json()["detail"]
    assert (await client.get("/v1/members/m1", headers=brand.headers)).status_code == 200


async def test_api_json_is_not_sniffed_nor_stored(client, brand):
    await enrol(client, brand)
    answer = await client.get("/v1/members/m1", headers=brand.headers)
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"
    problem = await client.get("/v1/members/nobody", headers=brand.headers)
    assert problem.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in answer.headers  # off unless configured


async def test_hsts_is_sent_when_configured_on_https(settings, redis, clock, backend, brand):
    from web.app import create_app

    secure = msgspec.structs.replace(settings, public_url="https://loyalty.example", hsts_seconds=31536000)
    app = create_app(
        secure, clock=clock, redis=redis if backend.endswith("fakeredis") else None, deliver_webhooks=False
    )
    async with AsyncTestClient(app=app, base_url="https://loyalty.example") as client:
        answer = await client.get("/health")
    assert answer.headers["strict-transport-security"] == "max-age=31536000"


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="10" height="10" fill="#123456"/></svg>'


async def test_badge_art_is_sandboxed_rebuilt_and_sets_no_cookie(client, brand):
    image = "data:image/svg+xml;base64," + base64.b64encode(SVG).decode()
    program = {"badges": [{"key": "star", "name": "Star", "image": image, "rule": {"event_type": "visit"}}]}
    assert (await client.put("/v1/program", json=program, headers=brand.headers)).status_code == 200
    client.cookies.clear()
    art = await client.get(f"/art/{brand.brand.slug}/star/image.svg")
    assert art.status_code == 200, art.text
    assert art.content == SVG
    assert "sandbox" in art.headers["content-security-policy"]
    assert "set-cookie" not in art.headers  # public and cacheable: no CSRF cookie for a shared cache to keep
    png = await client.get(f"/art/{brand.brand.slug}/star/image.png")
    assert "set-cookie" not in png.headers


async def test_uploading_an_svg_that_could_act_is_refused_with_the_field(client, brand):
    payload = b'<?xml-stylesheet href="https://evil.example/x.css"?><svg xmlns="http://www.w3.org/2000/svg"/>'
    image = "data:image/svg+xml;base64," + base64.b64encode(payload).decode()
    program = {"badges": [{"key": "bad", "name": "Bad", "image": image}]}
    refused = await client.put("/v1/program", json=program, headers=brand.headers)
    assert refused.status_code == 422
    assert refused.json()["field"].endswith(".image")


async def test_sign_in_failures_are_counted_per_client_too(client, brand, redis, settings, monkeypatch):
    import uuid

    from web.pages import sessions

    monkeypatch.setattr(sessions, "MAX_CLIENT_FAILURES", 3)
    statuses = []
    for _ in range(4):  # a different email each time: password spraying, which the per-email count misses
        await client.get("/console/login")
        answer = await client.post(
            "/console/login",
            data={
                "email": f"spray-{uuid.uuid4().hex[:8]}@brand.example",
                "password": "Summer2026!",
                "_csrf_token": client.cookies.get("ql_csrf"),
            },
            follow_redirects=False,
        )
        statuses.append(answer.status_code)
    # the test client's address; removed so later tests on the shared Redis start from zero
    await redis.delete(sessions._client_failures_key(settings.redis_namespace, "testclient"))
    assert statuses == [401, 401, 401, 429]


def test_serve_says_why_it_refuses_in_one_line(monkeypatch):
    from click.testing import CliRunner

    from web.cli import cli

    monkeypatch.setenv("QUESTLINE_DATABASE_URL", PG)
    monkeypatch.delenv("QUESTLINE_SECRET", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--port", "8765"])
    assert result.exit_code == 1
    assert "refusing to start: QUESTLINE_SECRET is the default" in result.output
    assert "Traceback" not in result.output
