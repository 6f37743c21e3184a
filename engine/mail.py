"""Email to members: a small sender Protocol, an SMTP sender (aiosmtplib) and an in-memory outbox.

Messages are built with the standard library's :class:`email.message.EmailMessage` (plain text plus an
optional HTML alternative); templates are rendered by the caller (``web/``). With no SMTP server
configured (``QUESTLINE_SMTP_URL`` unset, the embedded default) mails are written to the log and kept in
a bounded in-memory outbox the console shows, so a developer can follow a link without a mail server.
"""

from __future__ import annotations

import logging
from collections import deque
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

import msgspec

log = logging.getLogger("questline.mail")

#: How many mails the in-memory outbox keeps (oldest dropped first).
OUTBOX_SIZE = 200


class Mail(msgspec.Struct, frozen=True, kw_only=True):
    """One message to one recipient, rendered already."""

    to: str
    subject: str
    text: str
    html: str = ""
    headers: dict[str, str] = {}
    """Extra headers, e.g. ``List-Unsubscribe`` for marketing mail."""


class SentMail(msgspec.Struct, frozen=True, kw_only=True):
    """A mail as the in-memory outbox keeps it."""

    to: str
    subject: str
    text: str
    sent_at: datetime


def build_message(mail: Mail, *, sender: str, now: datetime) -> EmailMessage:
    """The MIME message for ``mail`` from ``sender`` (text, plus HTML as an alternative when given)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(now)
    domain = sender.rpartition("@")[2].strip("> ") or "questline.local"
    message["Message-ID"] = make_msgid(domain=domain)
    for name, value in mail.headers.items():
        message[name] = value
    message.set_content(mail.text)
    if mail.html:
        message.add_alternative(mail.html, subtype="html")
    return message


@runtime_checkable
class EmailSender(Protocol):
    """What sends mail to members (magic links, double opt-in, later notifications)."""

    async def send(self, mail: Mail, *, now: datetime) -> None:
        """Send ``mail`` (raises on a delivery failure the caller should report)."""
        ...


class MemoryOutbox:
    """The embedded default: mails are logged and kept in memory (the console lists them)."""

    def __init__(self, *, sender: str, size: int = OUTBOX_SIZE) -> None:
        self.sender = sender
        self._sent: deque[SentMail] = deque(maxlen=size)

    async def send(self, mail: Mail, *, now: datetime) -> None:
        """Keep ``mail`` and log it (the link in it is the point in development)."""
        self._sent.append(SentMail(to=mail.to, subject=mail.subject, text=mail.text, sent_at=now))
        log.info("mail to %s: %s\n%s", mail.to, mail.subject, mail.text)

    @property
    def sent(self) -> list[SentMail]:
        """Kept mails, newest first."""
        return list(reversed(self._sent))


class SmtpSender:
    """Sends through an SMTP server (``smtp://host:port``, ``smtps://`` for implicit TLS, user:password@ optional)."""

    def __init__(self, url: str, *, sender: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("QUESTLINE_SMTP_URL must look like smtp://host:port or smtps://user:pass@host:port")
        self.sender = sender
        self._host = parts.hostname
        self._port = parts.port or (465 if parts.scheme == "smtps" else 25)
        self._tls = parts.scheme == "smtps"
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._timeout = timeout

    async def send(self, mail: Mail, *, now: datetime) -> None:
        """Deliver ``mail`` in one SMTP session (STARTTLS when the server offers it, on ``smtp://``)."""
        import aiosmtplib

        await aiosmtplib.send(
            build_message(mail, sender=self.sender, now=now),
            hostname=self._host,
            port=self._port,
            use_tls=self._tls,
            start_tls=None if not self._tls else False,
            username=self._username,
            password=self._password,
            timeout=self._timeout,
        )


def create_sender(smtp_url: str, *, sender: str) -> EmailSender:
    """An :class:`SmtpSender` for ``smtp_url``, or a :class:`MemoryOutbox` when it is empty."""
    if not smtp_url:
        return MemoryOutbox(sender=sender)
    return SmtpSender(smtp_url, sender=sender)
