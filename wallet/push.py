"""Announcing a changed pass: an empty APNs push to each registered device, behind :class:`PassPusher`.

:class:`ApnsPusher` speaks HTTP/2 to Apple's APNs with ``aioapns``, authenticated by the brand's Pass Type ID
certificate (topic = the pass type identifier). Tests use :class:`RecordingPusher`, which keeps the pushes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

log = logging.getLogger("questline.wallet")


@dataclass(frozen=True, slots=True)
class PushCredentials:
    """The brand's pass certificate and key (PEM) that APNs authenticates the pushes with."""

    certificate_pem: str
    private_key_pem: str
    topic: str
    """The pass type identifier."""
    sandbox: bool = False


class PassPusher(Protocol):
    """Sends the "your pass changed" push to devices."""

    async def push(self, credentials: PushCredentials, tokens: Sequence[str]) -> list[str]:
        """Push to each token; answer the tokens APNs says are gone (their registrations are removed)."""
        ...


@dataclass
class RecordingPusher:
    """Keeps ``(topic, token)`` of every push instead of sending it (tests, development)."""

    sent: list[tuple[str, str]] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)

    async def push(self, credentials: PushCredentials, tokens: Sequence[str]) -> list[str]:
        """Record the pushes; tokens in ``gone`` are answered as unregistered."""
        self.sent.extend((credentials.topic, t) for t in tokens)
        return [t for t in tokens if t in self.gone]


class ApnsPusher:
    """Pushes through Apple's APNs over HTTP/2 (``aioapns``), one connection pool per call."""

    async def push(self, credentials: PushCredentials, tokens: Sequence[str]) -> list[str]:
        """Send an empty payload to each token (the pass-update push); failures are logged, not raised."""
        from aioapns import APNs, NotificationRequest

        if not tokens:
            return []
        # aioapns (like ssl) loads the client certificate from a file: write it private, load it, remove it.
        handle, path = tempfile.mkstemp(suffix=".pem")
        try:
            with os.fdopen(handle, "w") as pem:
                pem.write(credentials.certificate_pem.strip() + "\n" + credentials.private_key_pem.strip() + "\n")
            client = APNs(client_cert=path, topic=credentials.topic, use_sandbox=credentials.sandbox)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
        gone: list[str] = []
        try:
            for token in tokens:
                try:
                    result = await client.send_notification(NotificationRequest(device_token=token, message={}))
                except Exception:  # network trouble: the next change pushes again; the device also polls
                    log.warning("APNs push failed", exc_info=True)
                    continue
                if result.status == "410" or result.description in {"Unregistered", "BadDeviceToken"}:
                    gone.append(token)
        finally:
            client.pool.close()
        return gone
