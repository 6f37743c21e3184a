"""A live Questline server and a second origin, shared by the browser tests and ``scripts/screenshots.py``.

:func:`questline_server` runs uvicorn in a subprocess with the demo brand (SQLite in a working directory,
in-process Redis) on a free port; :func:`static_server` serves a directory on another port, standing in for
a brand's own website. Both stop when their ``with`` block ends.
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
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def questline_server(workdir: Path, *, secret: str, start_timeout: float = 90) -> Iterator[tuple[str, Path]]:
    """Questline with the demo brand on a free port; yields its URL and its SQLite file.

    The server's output goes to ``workdir/server.log``.

    Raises:
        RuntimeError: the server exited or did not answer ``/health`` within ``start_timeout`` seconds
            (the message holds its log).
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database = workdir / "questline.db"
    log_path = workdir / "server.log"
    env = {
        # The tests' own QUESTLINE_TEST_* variables are not settings: the server refuses unknown QUESTLINE_* ones.
        **{name: value for name, value in os.environ.items() if not name.startswith("QUESTLINE_TEST_")},
        "QUESTLINE_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "QUESTLINE_REDIS_URL": "memory://",
        "QUESTLINE_DEMO": "true",
        "QUESTLINE_PUBLIC_URL": url,
        "QUESTLINE_SECRET": secret,
        "QUESTLINE_KEY_CACHE_SECONDS": "0",
        "QUESTLINE_LOG_LEVEL": "warning",
        "QUESTLINE_WEBHOOKS_ALLOW_PRIVATE": "true",  # the browser tests' webhook receiver listens on 127.0.0.1
    }
    with log_path.open("wb") as log:
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
                "--http",  # the protocol `questline serve` runs (one socket write per response)
                "web.serving:HttpProtocol",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + start_timeout
            while not _healthy(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("Questline did not start:\n" + log_path.read_text())
                time.sleep(0.2)
            yield url, database
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the output clean."""


@contextlib.contextmanager
def static_server(directory: Path) -> Iterator[str]:
    """A plain HTTP server for ``directory`` on another port (another origin); yields that origin."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", free_port()), functools.partial(_QuietHandler, directory=str(directory))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def allow_origin(database: Path, origin: str) -> None:
    """Let ``origin`` embed the demo brand's widgets (added to its allow-list)."""
    with sqlite3.connect(database) as connection:
        row = connection.execute("SELECT settings FROM brands WHERE slug = 'demo'").fetchone()
        settings = json.loads(row[0] or "{}")
        settings["allowed_origins"] = sorted({*settings.get("allowed_origins", []), origin})
        connection.execute("UPDATE brands SET settings = ? WHERE slug = 'demo'", (json.dumps(settings),))


def add_console_admin(database: Path, *, email: str, password: str, name: str) -> None:
    """Create a console admin of the demo brand directly in the server's database."""
    from engine.admins import create_admin
    from engine.clock import SystemClock
    from engine.db import Database, create_engine
    from engine.tenants import get_brand

    async def create() -> None:
        db = Database(create_engine(f"sqlite+aiosqlite:///{database}"))
        try:
            async with db.read() as session:
                brand = await get_brand(session, "demo")
            await create_admin(
                db, brand_id=brand.id, email=email, password=password, name=name, now=SystemClock().now()
            )
        finally:
            await db.dispose()

    # Playwright's sync API may keep an event loop on this thread: run the coroutine on another one.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, create()).result()
