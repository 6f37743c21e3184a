"""A newcomer joins through the join page, confirms by email, invites a friend; both are rewarded.

The server sends its mail to a real SMTP server on loopback (aiosmtpd) started by this module, and the
test follows the links that arrive there, as a person would from their inbox.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.servers import SECRET_KEY, questline_server
from tests.smtp import Inbox, start_smtp

pytestmark = pytest.mark.timeout(240)


@dataclass
class JoinServer:
    """A Questline server whose mail goes to the test SMTP server."""

    url: str
    database: Path
    inbox: Inbox

    def external_id(self, email: str) -> str:
        with contextlib.closing(sqlite3.connect(self.database)) as db:
            row = db.execute("SELECT external_id FROM members WHERE email = ?", (email,)).fetchone()
        assert row is not None, email
        return str(row[0])

    def balance(self, external_id: str) -> int:
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {SECRET_KEY}"}) as api:
            return int(api.get(f"/v1/members/{external_id}/points").json()["balance"])

    def purchase(self, external_id: str, amount: float) -> None:
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {SECRET_KEY}"}) as api:
            response = api.post(
                "/v1/events",
                json={"id": f"buy-{uuid.uuid4().hex[:8]}", "member": external_id, "type": "purchase",
                      "occurred_at": "2026-11-20T10:00:00Z", "properties": {"amount": amount}},
            )  # fmt: skip
            assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def join_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JoinServer]:
    """The demo server with ``QUESTLINE_SMTP_URL`` pointing at a loopback SMTP server."""
    controller, inbox, smtp_url = start_smtp()
    previous = os.environ.get("QUESTLINE_SMTP_URL")
    os.environ["QUESTLINE_SMTP_URL"] = smtp_url
    try:
        with questline_server(tmp_path_factory.mktemp("join"), secret="browser-tests-secret-join") as (url, database):
            yield JoinServer(url=url, database=database, inbox=inbox)
    finally:
        if previous is None:
            os.environ.pop("QUESTLINE_SMTP_URL", None)
        else:
            os.environ["QUESTLINE_SMTP_URL"] = previous
        controller.stop()


def join_and_confirm(page: Any, server: JoinServer, start_url: str, email: str, name: str) -> None:
    page.goto(start_url)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Name").fill(name)
    page.get_by_label("I accept the program terms and the privacy notice.").check()
    page.get_by_role("button", name="Join").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    [message] = server.inbox.wait_for(email)
    assert message["Subject"] == "Confirm your email for Demo Coffee"
    [link] = [u for u in server.inbox.links(email) if "/confirm/" in u]
    page.goto(link)
    page.wait_for_url(f"{server.url}/portal")


def test_newcomer_joins_confirms_invites_and_both_are_rewarded(join_server, chromium):
    server = join_server
    ada_email = f"ada-{uuid.uuid4().hex[:6]}@example.com"
    ada_context = chromium.new_context()
    ada_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    ada = ada_context.new_page()
    join_and_confirm(ada, server, f"{server.url}/join/demo?lang=en", ada_email, "Ada")
    assert ada.locator("[data-live=balance]").inner_text() == "100"  # the welcome bonus
    ada.get_by_role("link", name="Invite friends").first.click()
    link = ada.locator("#referral-link").input_value()
    assert "/join/demo?ref=" in link
    ada.get_by_role("button", name="Share").click()
    ada.locator("#share-status").filter(has_text="Link copied").wait_for()

    ben_email = f"ben-{uuid.uuid4().hex[:6]}@example.com"
    ben_context = chromium.new_context()
    ben = ben_context.new_page()
    join_and_confirm(ben, server, link + "&lang=en", ben_email, "Ben")
    assert ben.locator("[data-live=balance]").inner_text() == "100"
    ben_id, ada_id = server.external_id(ben_email), server.external_id(ada_email)
    server.purchase(ben_id, 12.0)  # the friend's first qualifying purchase
    assert server.balance(ada_id) == 300  # welcome 100 + referral 200
    assert server.balance(ben_id) >= 200  # welcome 100 + referral 100 (+ the purchase's own points)
    ada.goto(f"{server.url}/portal/invite")
    assert ada.locator("#friends-joined").inner_text() == "1"
    assert ada.locator("#friends-qualified").inner_text() == "1"
    ada_context.close()
    ben_context.close()
