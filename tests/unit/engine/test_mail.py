"""The mail module: message building, the in-memory outbox, SMTP delivery to a loopback server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.mail import Mail, MemoryOutbox, SmtpSender, build_message, create_sender
from tests.smtp import start_smtp

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def test_message_has_headers_text_and_html_alternative():
    mail = Mail(
        to="a@example.com", subject="Ciao", text="plain body", html="<p>html body</p>",
        headers={"List-Unsubscribe": "<https://x.example/u/t>"},
    )  # fmt: skip
    message = build_message(mail, sender="Club <club@example.com>", now=NOW)
    assert message["To"] == "a@example.com" and message["From"] == "Club <club@example.com>"
    assert message["List-Unsubscribe"] == "<https://x.example/u/t>"
    assert message["Message-ID"].endswith("@example.com>")
    assert message.get_body(preferencelist=("plain",)).get_content().strip() == "plain body"
    assert "html body" in message.get_body(preferencelist=("html",)).get_content()


async def test_memory_outbox_keeps_newest_first_and_is_bounded():
    outbox = create_sender("", sender="x@example.com")
    assert isinstance(outbox, MemoryOutbox)
    small = MemoryOutbox(sender="x@example.com", size=2)
    for i in range(3):
        await small.send(Mail(to=f"{i}@example.com", subject=str(i), text="t"), now=NOW)
    assert [m.subject for m in small.sent] == ["2", "1"]


def test_smtp_url_is_checked():
    with pytest.raises(ValueError, match="QUESTLINE_SMTP_URL"):
        SmtpSender("http://mail.example", sender="x@example.com")


async def test_smtp_sender_delivers_to_a_real_server():
    controller, inbox, url = start_smtp()
    try:
        sender = create_sender(url, sender="Club <club@example.com>")
        await sender.send(Mail(to="b@example.com", subject="Link", text="open https://q.example/x"), now=NOW)
        [message] = inbox.wait_for("b@example.com")
        assert message["Subject"] == "Link"
        assert inbox.links("b@example.com") == ["https://q.example/x"]
    finally:
        controller.stop()
