"""Private keys at rest: sealed with AES-256-GCM under a key derived from the deployment's secret.

The key is HKDF-SHA256 of ``QUESTLINE_SECRET`` with the purpose ``questline wallet keys``; the brand id is
authenticated data, so a sealed key copied to another brand's row does not open. Rotating the secret makes
sealed keys unreadable: re-upload the brand's keys after a rotation (docs/wallet.md).
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from engine.errors import Conflict

_PREFIX = "v1:"


def _key(secret: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"questline wallet keys").derive(secret.encode())


def seal(plain: str, *, secret: str, brand_id: int) -> str:
    """``v1:<base64 nonce+ciphertext>`` of ``plain``."""
    nonce = os.urandom(12)
    sealed = AESGCM(_key(secret)).encrypt(nonce, plain.encode(), str(brand_id).encode())
    return _PREFIX + base64.b64encode(nonce + sealed).decode()


def unseal(sealed: str, *, secret: str, brand_id: int) -> str:
    """The plain text of a sealed value.

    Raises:
        Conflict: it does not open (the secret was rotated, or the value belongs to another brand).
    """
    try:
        raw = base64.b64decode(sealed.removeprefix(_PREFIX), validate=True)
        return AESGCM(_key(secret)).decrypt(raw[:12], raw[12:], str(brand_id).encode()).decode()
    except (InvalidTag, ValueError) as exc:
        raise Conflict("the brand's wallet key cannot be opened: upload it again (was the secret rotated?)") from exc
