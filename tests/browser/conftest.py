"""Browser tests: a real Questline server, a second origin that embeds widgets, headless Debian Chromium.

One server (uvicorn in a subprocess, SQLite in a temporary directory, in-process Redis, the demo brand)
serves every browser test of the session; tests isolate by creating their own members and definitions.
Without ``/usr/bin/chromium`` or the ``playwright`` package the tests skip locally and fail under
``CI=true`` (the policy of ``tests/conftest.py``). Playwright never downloads a browser here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import http.server
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import CI

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET_KEY = "sk_test_questline_demo_secret_key"
PUBLISHABLE_KEY = "pk_test_questline_demo_public_key"
PASSWORD = "browser-tests-password"


def _unavailable(message: str) -> None:
    if CI:
        pytest.fail(f"{message}; under CI=true a missing browser is a failure", pytrace=False)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """The running Questline server."""

    url: str
    database: Path
    api: httpx.Client

    def events(self, *events: dict[str, Any]) -> list[dict[str, Any]]:
        """Send events with the demo's secret key; returns the per-event results."""
        response = self.api.post("/v1/events", json={"events": list(events)})
        assert response.status_code == 200, response.text
        return list(response.json()["results"])

    def member(self, external_id: str, *, name: str, locale: str = "en") -> None:
        """Enrol a member of the demo brand."""
        response = self.api.post(
            "/v1/members", json={"external_id": external_id, "display_name": name, "locale": locale}
        )
        assert response.status_code in (200, 201), response.text

    def portal_link(self, external_id: str, **options: Any) -> str:
        """A signed portal link for a member."""
        response = self.api.post(f"/v1/members/{external_id}/portal-link", json=options)
        assert response.status_code == 201, response.text
        return str(response.json()["url"])

    def widget_token(self, external_id: str) -> str:
        """A signed widget token for a member."""
        response = self.api.post(f"/v1/members/{external_id}/widget-token", json={})
        assert response.status_code == 201, response.text
        return str(response.json()["token"])

    def add_to_program(self, **sections: list[dict[str, Any]]) -> None:
        """Append definitions to the demo program (export, extend, apply: the API's own round trip)."""
        document = self.api.get("/v1/program").json()
        for name, items in sections.items():
            document[name] = [*document.get(name, []), *items]
        response = self.api.put("/v1/program", json=document)
        assert response.status_code == 200, response.text

    def allow_origin(self, origin: str) -> None:
        """Let ``origin`` embed the demo brand's widgets."""
        with sqlite3.connect(self.database) as connection:
            row = connection.execute("SELECT settings FROM brands WHERE slug = 'demo'").fetchone()
            settings = json.loads(row[0] or "{}")
            settings["allowed_origins"] = sorted({*settings.get("allowed_origins", []), origin})
            connection.execute("UPDATE brands SET settings = ? WHERE slug = 'demo'", (json.dumps(settings),))

    def create_admin(self) -> str:
        """A console admin of the demo brand; returns the email (the password is :data:`PASSWORD`)."""
        from engine.admins import create_admin
        from engine.clock import SystemClock
        from engine.db import Database, create_engine
        from engine.tenants import get_brand

        email = f"browser-{uuid.uuid4().hex[:8]}@demo.example"

        async def create() -> None:
            db = Database(create_engine(f"sqlite+aiosqlite:///{self.database}"))
            try:
                async with db.read() as session:
                    brand = await get_brand(session, "demo")
                await create_admin(
                    db, brand_id=brand.id, email=email, password=PASSWORD, name="Browser", now=SystemClock().now()
                )
            finally:
                await db.dispose()

        # Playwright's sync API keeps an event loop on this thread: run the coroutine on another one.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, create()).result()
        return email


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Questline with the demo brand on a free port (uvicorn in a subprocess)."""
    workdir = tmp_path_factory.mktemp("browser")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    database = workdir / "questline.db"
    env = {
        **os.environ,
        "QUESTLINE_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "QUESTLINE_REDIS_URL": "memory://",
        "QUESTLINE_DEMO": "true",
        "QUESTLINE_PUBLIC_URL": url,
        "QUESTLINE_SECRET": "browser-tests-secret",
        "QUESTLINE_KEY_CACHE_SECONDS": "0",
        "QUESTLINE_LOG_LEVEL": "warning",
    }
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "web.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("Questline did not start:\n" + (workdir / "server.log").read_text(), pytrace=False)
            time.sleep(0.2)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {SECRET_KEY}"}, timeout=30) as api:
            yield LiveServer(url=url, database=database, api=api)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output clean."""


@dataclass
class HostSite:
    """A static site on another origin, standing in for a brand's own website."""

    origin: str
    root: Path

    def page(self, name: str, body: str) -> str:
        """Write an HTML page and return its URL."""
        (self.root / name).write_text(
            f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Brand site</title></head><body>{body}</body></html>',
            encoding="utf-8",
        )
        return f"{self.origin}/{name}"


@pytest.fixture(scope="session")
def host_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostSite]:
    """A second origin (another port) serving static pages."""
    root = tmp_path_factory.mktemp("site")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", _free_port()), functools.partial(_QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield HostSite(origin=f"http://127.0.0.1:{server.server_address[1]}", root=root)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's headless Chromium driven by Playwright (never a downloaded browser)."""
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh browser context and page; fails the test if any script dialog opens (an XSS would)."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    dialogs: list[str] = []
    tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    with contextlib.suppress(Exception):
        context.close()
    assert dialogs == [], f"a script dialog opened: {dialogs}"
    assert errors == [], f"page errors: {errors}"
