"""Webhook signatures as Standard Webhooks 1.0 defines them, signed by the ``standardwebhooks`` package.

Headers ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256 of
"id.timestamp.body">`` with the endpoint's ``whsec_`` secret; a header may carry several signatures,
space-separated (a secret's rotation overlap). :func:`verify` checks a message as a receiver would.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

TOLERANCE_SECONDS = 5 * 60


def sign(secret: str, *, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one message (``standardwebhooks``' signer)."""
    return Webhook(secret).sign(message_id, datetime.fromtimestamp(timestamp, UTC), body)


def verify(secret: str, *, headers: dict[str, str], body: bytes, now: datetime) -> bool:
    """Check a received webhook as a receiver would (any matching ``v1`` signature, 5-minute tolerance).

    ``standardwebhooks``' own ``Webhook.verify`` reads the wall clock; this takes ``now`` so tests control time.
    """
    try:
        timestamp = int(headers["webhook-timestamp"])
        message_id = headers["webhook-id"]
        offered = headers["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    if abs(now.timestamp() - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = sign(secret, message_id=message_id, timestamp=timestamp, body=body)
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)
