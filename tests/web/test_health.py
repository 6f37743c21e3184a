"""Health probes: liveness apart from readiness, which names the dependency that is down."""

from __future__ import annotations

import socket
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import REDIS_URL
from tests.helpers import event


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_live_and_ready_answer_200_when_everything_answers(client: AsyncTestClient[Any]) -> None:
    live = await client.get("/health/live")
    assert live.status_code == 200
    assert live.json()["status"] == "ok"
    for path in ("/health/ready", "/health"):  # /health stays as an alias of readiness
        ready = await client.get(path)
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert (body["status"], body["database"], body["redis"], body["down"]) == ("ok", "ok", "ok", [])
        assert body["redis_circuit"] == "closed"


@pytest.mark.parametrize("backend", ["sqlite+fakeredis"], indirect=True)
async def test_redis_down_readiness_names_it_and_the_api_keeps_working(settings, clock, brand) -> None:
    """Redis unreachable from the start: ready is 503 naming redis; events 200; boards read from SQL."""
    from web.app import create_app

    dead = msgspec.structs.replace(settings, redis_url=f"redis://127.0.0.1:{closed_port()}/0", redis_timeout_ms=200)
    app = create_app(dead, clock=clock, deliver_webhooks=False)
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/health/live")).status_code == 200

        spec = {"key": "visits", "title": "Visits", "metric": {"kind": "event_count", "event_type": "visit"}}
        put = await client.put("/v1/leaderboards/visits", json=spec, headers=brand.headers)
        assert put.status_code in (200, 201), put.text
        at = clock.now().isoformat()
        for n in range(3):
            sent = await client.post("/v1/events", json=event(f"v{n}", "ada", "visit", at), headers=brand.headers)
            assert sent.status_code == 200, sent.text
        page = await client.get("/v1/leaderboards/visits", params={"around": "ada"}, headers=brand.headers)
        assert page.status_code == 200, page.text
        assert page.json()["source"] == "sql"
        assert [(e["member"], e["score"]) for e in page.json()["entries"]] == [("ada", 3)]
        assert page.json()["me"]["rank"] == 1
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.headers["retry-after"].isdigit()
        body = ready.json()
        assert body["down"] == ["redis"] and body["redis"] == "down" and body["database"] == "ok"
        assert body["redis_circuit"] in ("open", "half_open")


@pytest.mark.parametrize("backend", ["postgres+redis"], indirect=True)
async def test_database_down_readiness_names_it_and_requests_answer_503(settings, clock) -> None:
    """PostgreSQL unreachable: ready is 503 naming the database; an API call is a 503 problem, not a 500."""
    from web.app import create_app

    url = f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/nothing"
    dead = msgspec.structs.replace(settings, database_url=url, redis_url=REDIS_URL)
    app = create_app(dead, clock=clock, deliver_webhooks=False)
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/health/live")).status_code == 200
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["down"] == ["database"]
        sent = await client.post(
            "/v1/events",
            json=event("e1", "ada", "visit", clock.now().isoformat()),
            headers={"Authorization": "Bearer sk_test_whatever"},
        )
        assert sent.status_code == 503, sent.text
        assert sent.headers["content-type"].startswith("application/problem+json")
        assert int(sent.headers["retry-after"]) > 0
        assert sent.json()["type"].endswith("/service-unavailable")
