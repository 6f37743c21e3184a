"""Regenerate docs/screenshots/*.png: the member portal, the brand console and the widgets.

Starts Questline on a free port with the demo brand (SQLite in a temporary directory, in-process Redis),
creates a console admin, serves a host page on a second origin for the widget, and photographs each page
with Debian's headless Chromium through Playwright::

    .venv/bin/python scripts/screenshots.py            # writes docs/screenshots/
    .venv/bin/python scripts/screenshots.py --out /tmp/shots

Needs ``/usr/bin/chromium`` and the ``playwright`` package (never ``playwright install``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import http.server
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
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
SECRET = "sk_test_questline_demo_secret_key"
PUBLISHABLE = "pk_test_questline_demo_public_key"
ADMIN_EMAIL = "ada@demo-coffee.example"
ADMIN_PASSWORD = "screenshots-only-password"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def questline_server(workdir: Path) -> Iterator[tuple[str, Path]]:
    """Questline with the demo brand on a free port; yields its URL and its SQLite file."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database = workdir / "questline.db"
    env = {
        **os.environ,
        "QUESTLINE_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "QUESTLINE_REDIS_URL": "memory://",
        "QUESTLINE_DEMO": "true",
        "QUESTLINE_PUBLIC_URL": url,
        "QUESTLINE_SECRET": "screenshots-secret-value",
        "QUESTLINE_KEY_CACHE_SECONDS": "0",
        "QUESTLINE_LOG_LEVEL": "warning",
    }
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
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    errors = process.stderr.read() if process.stderr is not None else b""
                    raise RuntimeError("Questline did not start: " + errors.decode()) from None
                time.sleep(0.2)
        yield url, database
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """A static file handler that does not log every request."""

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet."""


@contextlib.contextmanager
def static_server(directory: Path) -> Iterator[str]:
    """A plain HTTP server for ``directory`` on another port (another origin)."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def api(url: str, path: str, body: object | None = None) -> object:
    """Call the JSON API with the demo's secret key."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url + path,
        data=data,
        method="POST" if data is not None else "GET",
        headers={"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def prepare(database: Path, host_origin: str) -> None:
    """Allow the host page's origin to embed the widgets and create a console admin."""
    from engine.admins import create_admin
    from engine.clock import SystemClock
    from engine.db import Database, create_engine
    from engine.tenants import get_brand

    with sqlite3.connect(database) as connection:
        connection.execute(
            "UPDATE brands SET settings = ? WHERE slug = 'demo'", (json.dumps({"allowed_origins": [host_origin]}),)
        )

    async def admin() -> None:
        db = Database(create_engine(f"sqlite+aiosqlite:///{database}"))
        try:
            async with db.read() as session:
                brand = await get_brand(session, "demo")
            await create_admin(
                db,
                brand_id=brand.id,
                email=ADMIN_EMAIL,
                password=ADMIN_PASSWORD,
                name="Ada Lovelace",
                now=SystemClock().now(),
            )
        finally:
            await db.dispose()

    asyncio.run(admin())


def host_page(directory: Path, url: str, token: str) -> None:
    """The page of "another site" that embeds the widgets with the script tag."""
    (directory / "index.html").write_text(
        f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Demo Coffee — rewards</title>
<style>body{{font:16px/1.5 Georgia,serif;background:#f3ede4;color:#2b2118;margin:0}}
header{{background:#2b2118;color:#f3ede4;padding:18px 32px;font-size:1.4rem}}
main{{display:grid;grid-template-columns:1fr 1fr;gap:28px;padding:28px 32px;max-width:1100px}}
h2{{margin:0 0 10px}}</style></head><body><header>☕ Demo Coffee · Rewards club</header><main>
<section><h2>This week's top customers</h2>
<script src="{url}/static/widget.js" data-board="weekly-points" data-key="{PUBLISHABLE}" data-theme="dark"
 data-accent="#e0803a" data-rows="8" data-member="{token}" data-lang="it" async></script></section>
<section><h2>Your badges</h2>
<script src="{url}/static/widget.js" data-widget="badges" data-key="{PUBLISHABLE}" data-member="{token}"
 data-accent="#e0803a" data-lang="it" async></script></section></main></body></html>""",
        encoding="utf-8",
    )


def shoot(out: Path) -> None:
    """Take every screenshot into ``out``."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, questline_server(Path(tmp)) as (url, database):
        site = Path(tmp) / "site"
        site.mkdir()
        with static_server(site) as host:
            prepare(database, host)
            portal = api(url, "/v1/members/m-giulia/portal-link", {})
            token = api(url, "/v1/members/m-giulia/widget-token", {})
            host_page(site, url, str(token["token"]))  # type: ignore[index]
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                desktop = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
                page = desktop.new_page()
                page.goto(str(portal["url"]))  # type: ignore[index]
                page.screenshot(path=out / "portal-home.png", full_page=True)
                page.goto(f"{url}/portal/challenges")
                page.screenshot(path=out / "portal-challenges.png", full_page=True)
                page.goto(f"{url}/portal/badges")
                page.screenshot(path=out / "portal-badges.png", full_page=True)
                page.goto(f"{url}/portal/leaderboards")
                page.screenshot(path=out / "portal-leaderboards.png", full_page=True)

                phone = browser.new_context(
                    viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
                )
                mobile = phone.new_page()
                english = api(url, "/v1/members/m-emma/portal-link", {"page": "challenges"})
                mobile.goto(str(english["url"]))  # type: ignore[index]
                mobile.screenshot(path=out / "portal-phone.png")

                page.goto(f"{url}/console/login")
                page.fill("#f-email", ADMIN_EMAIL)
                page.fill("#f-password", ADMIN_PASSWORD)
                page.click("form.form button[type=submit]")
                page.wait_for_url(f"{url}/console")
                page.screenshot(path=out / "console-dashboard.png", full_page=True)
                page.goto(f"{url}/console/campaigns/new")
                page.fill("#f-c_title", "Autumn reviews")
                page.fill("#f-c_key", "autumn-reviews")
                page.fill("#f-ch_title", "Write 3 reviews with 4+ stars")
                page.fill("#f-ch_key", "autumn-3-reviews")
                page.fill("#f-ch_event_type", "review")
                page.fill("#f-ch_target", "three")
                page.fill("#f-ch_filter", "{field: properties.stars, gte: 4}")
                page.click("#campaign-form button[type=submit]")
                page.locator("#e-ch_target").wait_for()
                page.screenshot(path=out / "console-campaign-error.png", full_page=True)
                page.goto(f"{url}/console/program")
                page.click("#simulate")
                page.locator("#simulation").wait_for()
                page.screenshot(path=out / "console-program.png", full_page=True)
                page.goto(f"{url}/console/members/m-giulia")
                page.screenshot(path=out / "console-member.png", full_page=True)
                page.goto(f"{url}/console/badges")
                page.screenshot(path=out / "console-badges.png", full_page=True)
                page.goto(f"{url}/console/widgets")
                page.frame_locator("iframe").first.locator("#rows li").first.wait_for()
                page.screenshot(path=out / "console-widgets.png", full_page=True)

                page.goto(host + "/index.html")
                page.frame_locator("iframe.questline-widget").first.locator("#rows li").first.wait_for()
                page.wait_for_timeout(800)
                page.screenshot(path=out / "widget-embedded.png", full_page=True)
                browser.close()
    print(f"screenshots written to {out}")


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    shoot(args.out)


if __name__ == "__main__":
    main()
