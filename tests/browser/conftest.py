"""Browser tests: a real Questline server, a second origin that embeds widgets, headless Debian Chromium.

One server (uvicorn in a subprocess, SQLite in a temporary directory, in-process Redis, the demo brand)
serves every browser test of the session; tests isolate by creating their own members and definitions.
Without ``/usr/bin/chromium`` or the ``playwright`` package the tests skip locally and fail under
``CI=true`` (the policy of ``tests/conftest.py``). Playwright never downloads a browser here.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.servers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SECRET_KEY,
    add_console_admin,
    allow_origin,
    questline_server,
    static_server,
)
from tests.conftest import CI

PASSWORD = "browser-tests-password"


def _unavailable(message: str) -> None:
    if CI:
        pytest.fail(f"{message}; under CI=true a missing browser is a failure", pytrace=False)
    pytest.skip(message)


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
        allow_origin(self.database, origin)

    def create_admin(self) -> str:
        """A console admin of the demo brand; returns the email (the password is :data:`PASSWORD`)."""
        email = f"browser-{uuid.uuid4().hex[:8]}@demo.example"
        add_console_admin(self.database, email=email, password=PASSWORD, name="Browser")
        return email


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Questline with the demo brand on a free port (uvicorn in a subprocess)."""
    with contextlib.ExitStack() as stack:
        try:
            url, database = stack.enter_context(
                questline_server(tmp_path_factory.mktemp("browser"), secret="browser-tests-secret")
            )
        except RuntimeError as exc:
            pytest.fail(str(exc), pytrace=False)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {SECRET_KEY}"}, timeout=30) as api:
            yield LiveServer(url=url, database=database, api=api)


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
    with static_server(root) as origin:
        yield HostSite(origin=origin, root=root)


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
