"""An admin opens an endpoint's delivery log, sends a test event, sees the answer logged, and replays it."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import PASSWORD
from tests.browser.servers import free_port

pytestmark = pytest.mark.browser


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, Any]]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.received.append((self.headers["webhook-id"], json.loads(body)))
        answer = b"received by the test receiver"
        self.send_response(200)
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the output clean."""


@contextlib.contextmanager
def webhook_receiver() -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """A local endpoint answering 200 to every webhook; yields its URL and what it received."""
    received: list[tuple[str, dict[str, Any]]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks", received
    finally:
        server.shutdown()
        server.server_close()


def webhook_endpoint(live_server: Any, url: str, *, topics: list[str] | None = None) -> int:
    """Register an endpoint of the demo brand through the API; returns its id."""
    response = live_server.api.post("/v1/webhooks", json={"url": url, "topics": topics or ["badge.*"]})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def test_delivery_log_shows_a_test_event_and_replays_it(live_server, page):
    with webhook_receiver() as (url, received):
        # A topic no other browser test causes (the live server is shared): the log holds only this test's sends.
        endpoint = webhook_endpoint(live_server, url, topics=["tier.overridden"])
        email = live_server.create_admin()
        page.goto(f"{live_server.url}/console/webhooks")
        page.fill("#f-email", email)
        page.fill("#f-password", PASSWORD)
        page.locator("form button[type=submit]").first.click()
        page.wait_for_url(f"{live_server.url}/console/webhooks")
        page.get_by_role("link", name=f"Delivery log of {url}").click()
        page.wait_for_url(f"{live_server.url}/console/webhooks/{endpoint}")
        assert "No deliveries yet" in page.locator("main").inner_text()

        page.get_by_role("button", name="Send test event").click()
        page.locator("#webhook-attempt").wait_for()
        assert "HTTP 200" in page.locator("#webhook-attempt").inner_text()
        rows = page.locator("#delivery-log tbody tr")
        assert rows.count() == 1
        first = rows.first.inner_text()
        assert "webhook.test" in first and "200" in first and "received by the test receiver" in first

        rows.first.get_by_role("button", name="Replay").click()
        page.get_by_text("Delivery replayed").wait_for()
        assert rows.count() == 2
        assert "replay" in rows.first.inner_text() and "succeeded" in rows.first.inner_text()
        assert len(received) == 2 and received[0][0] == received[1][0]  # the same webhook-id: receivers dedupe
        assert received[1][1]["type"] == "webhook.test"
