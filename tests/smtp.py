"""A real SMTP server on loopback (aiosmtpd) that keeps what arrives, for mail tests."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import time
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

_LINK = re.compile(r"https?://\S+")


class Inbox:
    """Messages received by the test SMTP server, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Keep the message."""
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"

    def wait_for(self, to: str, count: int = 1, timeout: float = 5.0) -> list[EmailMessage]:
        """The messages to ``to`` once at least ``count`` arrived."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.messages if m["To"] == to]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)

    def links(self, to: str) -> list[str]:
        """Every link in the messages to ``to``, in arrival order."""
        out: list[str] = []
        for message in self.messages:
            if message["To"] == to:
                body = message.get_body(preferencelist=("plain",))
                out.extend(_LINK.findall(body.get_content() if body is not None else ""))
        return out


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_smtp() -> tuple[Controller, Inbox, str]:
    """Start the server; returns its controller, inbox and ``smtp://`` URL."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, inbox, f"smtp://127.0.0.1:{port}"
