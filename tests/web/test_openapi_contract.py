"""Schemathesis against the running app: the OpenAPI document tells the truth, and nothing answers 500.

The app is served by uvicorn on a loopback port (SQLite + in-process fake Redis) with a brand whose secret
key the requests carry. Every documented operation gets positive and negative examples (a fixed seed,
bounded examples) checked by schemathesis' response checks; the failures of all operations are reported
together.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from engine.clock import SystemClock
from engine.db import Database, create_engine
from engine.settings import load_settings
from tests.helpers import make_brand

pytestmark = pytest.mark.filterwarnings("ignore")

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    unsupported_method,
    ignored_auth,
]
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 8}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The app on a loopback port (SQLite file, fake Redis) and the secret key of a brand on it."""
    import uvicorn

    from engine.schema import upgrade_sync
    from web.app import create_app

    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('contract') / 'questline.db'}"
    upgrade_sync(url)

    async def brand() -> str:
        db = Database(create_engine(url))
        try:
            return (await make_brand(db, SystemClock())).secret
        finally:
            await db.dispose()

    secret = asyncio.run(brand())
    port = _free_port()
    settings = load_settings(
        {}, database_url=url, redis_url="memory://", auto_migrate=False, port=port, log_level="error"
    )
    app = create_app(settings, deliver_webhooks=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", secret
    server.should_exit = True
    thread.join(timeout=10)


def _exercise(operation: Any, mode: GenerationMode, base_url: str, headers: dict[str, str]) -> list[str]:
    failures: list[str] = []

    @seed(20261120)
    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        try:
            case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)
        except (AssertionError, BaseExceptionGroup) as exc:  # a schemathesis failure, or a group of them
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            shown = [line for line in lines[:5] if not line.startswith("Schemathesis found")]
            shown += [line for line in lines if line.startswith("curl ")][:1]
            failures.append(f"{operation.label} [{mode.value}]: {' / '.join(shown)}")

    try:
        run()
    except Unsatisfiable:  # nothing to make invalid (an operation without parameters or body)
        assert mode is GenerationMode.NEGATIVE
    return failures


@pytest.mark.timeout(600)  # about a minute on an idle machine; CI shares two cores
def test_every_operation_keeps_its_contract(live_app: tuple[str, str]) -> None:
    base_url, secret = live_app
    schema = schemathesis.openapi.from_url(f"{base_url}/schema/openapi.json")
    headers = {"Authorization": f"Bearer {secret}"}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50
    for operation in operations:
        for mode in EXAMPLES:
            failures.extend(_exercise(operation, mode, base_url, headers))
    unique = sorted(set(failures))
    assert not unique, f"{len(unique)} contract failures:\n" + "\n".join(unique[:60])
