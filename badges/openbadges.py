"""Open Badges documents and baking. Pure; no I/O.

Every award is published as a **hosted Open Badges 2.0** assertion (JSON-LD ``Assertion`` → ``BadgeClass``
→ ``Issuer``, all on our public origin, so the assertion's id lies in the issuer's verification scope)
and as an **Open Badges 3.0** ``OpenBadgeCredential`` (unsigned: the hosted URL is its proof of origin).
The recipient is identified by a salted SHA-256 hash (``sha256$<hex sha256(identity + salt)>``), never in
clear. Baking puts the assertion into the image itself: a PNG ``iTXt`` chunk with keyword ``openbadges``
(uncompressed, at most one), or an ``<openbadges:assertion>`` first child of an SVG's root.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
import uuid
import xml.etree.ElementTree as ET
import zlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import quoteattr

import msgspec

from badges.criteria import narrative
from badges.images import PNG_SIGNATURE

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from badges.models import Award, BadgeDef, Level

OB2_CONTEXT = "https://w3id.org/openbadges/v2"
VC2_CONTEXT = "https://www.w3.org/ns/credentials/v2"
OB3_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
OB2_SVG_NS = "http://openbadges.org"
PNG_KEYWORD = "openbadges"
_IDENTITY_TYPES_V3 = {"email": "emailAddress", "url": "url"}


class IssuerInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What an issuer profile shows of a brand."""

    slug: str
    name: str
    url: str
    email: str
    description: str = ""


def issuer_info(*, slug: str, name: str, settings: dict[str, Any], origin: str) -> IssuerInfo:
    """The brand as issuer: ``settings`` may give ``url``, ``email`` and ``description``; else our origin."""
    host = urlsplit(origin).hostname or "localhost"
    url = settings.get("url")
    email = settings.get("email")
    description = settings.get("description")
    return IssuerInfo(
        slug=slug,
        name=name,
        url=url if isinstance(url, str) and url else origin.rstrip("/") + "/",
        email=email if isinstance(email, str) and "@" in email else f"badges@{host}",
        description=description if isinstance(description, str) else "",
    )


class Urls:
    """Every public URL of badges, on one origin (``Settings.public_url``)."""

    def __init__(self, origin: str) -> None:
        self.origin = origin.rstrip("/")

    def issuer_v2(self, slug: str) -> str:
        """The OB 2.0 issuer profile of a brand."""
        return f"{self.origin}/ob/v2/issuers/{quote(slug)}"

    def badge_class_v2(self, slug: str, key: str, level: str = "") -> str:
        """The OB 2.0 BadgeClass of a badge (each level is its own class)."""
        tail = f"/{quote(level)}" if level else ""
        return f"{self.origin}/ob/v2/badgeclasses/{quote(slug)}/{quote(key)}{tail}"

    def assertion_v2(self, uid: str) -> str:
        """The hosted OB 2.0 assertion of an award."""
        return f"{self.origin}/ob/v2/assertions/{quote(uid)}"

    def baked_png(self, uid: str) -> str:
        """The award's image with the assertion baked in (PNG)."""
        return self.assertion_v2(uid) + "/baked.png"

    def baked_svg(self, uid: str) -> str:
        """The award's image with the assertion baked in (SVG)."""
        return self.assertion_v2(uid) + "/baked.svg"

    def issuer_v3(self, slug: str) -> str:
        """The OB 3.0 profile of a brand."""
        return f"{self.origin}/ob/v3/issuers/{quote(slug)}"

    def achievement_v3(self, slug: str, key: str, level: str = "") -> str:
        """The OB 3.0 achievement of a badge (each level is its own achievement)."""
        tail = f"/{quote(level)}" if level else ""
        return f"{self.origin}/ob/v3/achievements/{quote(slug)}/{quote(key)}{tail}"

    def credential_v3(self, uid: str) -> str:
        """The OB 3.0 ``OpenBadgeCredential`` of an award."""
        return f"{self.origin}/ob/v3/credentials/{quote(uid)}"

    def image(self, slug: str, key: str, level: str = "", *, ext: str = "png") -> str:
        """The badge's image (uploaded or generated) as ``png`` or ``svg``."""
        query = f"?level={quote(level)}" if level else ""
        return f"{self.origin}/art/{quote(slug)}/{quote(key)}/image.{ext}{query}"

    def recipient(self, slug: str, external_id: str) -> str:
        """The IRI naming a member without an email (only ever published hashed)."""
        return f"{self.origin}/ob/recipients/{quote(slug)}/{quote(external_id, safe='')}"


def recipient_identity(*, attributes: Mapping[str, Any], fallback: str | Callable[[], str]) -> tuple[str, str]:
    """The identity type and value an award is made out to.

    The member's ``email`` attribute, normalised (trimmed, lower-case), or else ``fallback`` as a ``url``
    (a callable is called only then: the pipeline makes the URL for members without an email alone).
    """
    email = attributes.get("email")
    if isinstance(email, str) and "@" in email.strip():
        return "email", email.strip().lower()
    return "url", fallback if isinstance(fallback, str) else fallback()


def hash_identity(identity: str, salt: str) -> str:
    """The OB identity hash: ``sha256$`` + hex SHA-256 of identity then salt."""
    return "sha256$" + hashlib.sha256((identity + salt).encode()).hexdigest()


def subject_id(secret: str, *, brand_id: int, member_id: int) -> str:
    """A stable, unguessable ``urn:uuid:`` for a member as credential subject (HMAC of the server secret)."""
    digest = hmac.new(secret.encode(), f"ob-subject:{brand_id}:{member_id}".encode(), hashlib.sha256).digest()
    return f"urn:uuid:{uuid.UUID(bytes=digest[:16], version=4)}"


def iso(instant: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` (OB requires a timezone)."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _class_name(badge: BadgeDef, level: Level | None) -> str:
    return f"{badge.name} — {level.name}" if level is not None else badge.name


def _description(badge: BadgeDef, level: Level | None) -> str:
    return badge.description or narrative(badge, level)


def issuer_v2(urls: Urls, issuer: IssuerInfo) -> dict[str, Any]:
    """The OB 2.0 ``Issuer`` profile (required: id, type, name, url, email)."""
    doc: dict[str, Any] = {
        "@context": OB2_CONTEXT,
        "type": "Issuer",
        "id": urls.issuer_v2(issuer.slug),
        "name": issuer.name,
        "url": issuer.url,
        "email": issuer.email,
    }
    if issuer.description:
        doc["description"] = issuer.description
    return doc


def badge_class_v2(urls: Urls, issuer: IssuerInfo, badge: BadgeDef, level: Level | None = None) -> dict[str, Any]:
    """The OB 2.0 ``BadgeClass`` (required: id, type, name, description, image, criteria, issuer)."""
    level_key = level.key if level is not None else ""
    doc: dict[str, Any] = {
        "@context": OB2_CONTEXT,
        "type": "BadgeClass",
        "id": urls.badge_class_v2(issuer.slug, badge.key, level_key),
        "name": _class_name(badge, level),
        "description": _description(badge, level),
        "image": urls.image(issuer.slug, badge.key, level_key),
        "criteria": {"narrative": narrative(badge, level)},
        "issuer": urls.issuer_v2(issuer.slug),
    }
    if badge.category:
        doc["tags"] = [badge.category]
    return doc


def assertion_v2(urls: Urls, issuer: IssuerInfo, badge: BadgeDef, award: Award) -> dict[str, Any]:
    """The hosted OB 2.0 ``Assertion`` (required: id, type, recipient, badge, verification, issuedOn).

    A revoked award keeps its document and adds ``revoked: true`` and ``revocationReason``; the endpoint
    answers it with ``410 Gone``.
    """
    doc: dict[str, Any] = {
        "@context": OB2_CONTEXT,
        "type": "Assertion",
        "id": urls.assertion_v2(award.uid),
        "recipient": {
            "type": award.recipient_type,
            "hashed": True,
            "salt": award.salt,
            "identity": award.recipient_hash,
        },
        "badge": urls.badge_class_v2(issuer.slug, badge.key, award.level),
        "issuedOn": iso(award.awarded_at),
        "verification": {"type": "HostedBadge"},
        "image": urls.baked_png(award.uid),
    }
    if award.reason:
        doc["narrative"] = award.reason
    if award.revoked:
        doc["revoked"] = True
        doc["revocationReason"] = award.revocation_reason or "revoked by the issuer"
    return doc


def profile_v3(urls: Urls, issuer: IssuerInfo) -> dict[str, Any]:
    """The OB 3.0 issuer ``Profile``."""
    doc: dict[str, Any] = {
        "id": urls.issuer_v3(issuer.slug),
        "type": ["Profile"],
        "name": issuer.name,
        "url": issuer.url,
        "email": issuer.email,
    }
    if issuer.description:
        doc["description"] = issuer.description
    return doc


def achievement_v3(urls: Urls, issuer: IssuerInfo, badge: BadgeDef, level: Level | None = None) -> dict[str, Any]:
    """The OB 3.0 ``Achievement`` (id, type, name, description, criteria, image)."""
    level_key = level.key if level is not None else ""
    doc: dict[str, Any] = {
        "id": urls.achievement_v3(issuer.slug, badge.key, level_key),
        "type": ["Achievement"],
        "achievementType": "Badge",
        "name": _class_name(badge, level),
        "description": _description(badge, level),
        "criteria": {"narrative": narrative(badge, level)},
        "image": {"id": urls.image(issuer.slug, badge.key, level_key), "type": "Image"},
        "creator": profile_v3(urls, issuer),
    }
    if badge.category:
        doc["tag"] = [badge.category]
    return doc


def credential_v3(urls: Urls, issuer: IssuerInfo, badge: BadgeDef, award: Award, *, subject: str) -> dict[str, Any]:
    """The OB 3.0 ``OpenBadgeCredential``, unsigned.

    Required: @context, id, type, issuer, validFrom, name, credentialSubject (an id and a hashed identifier).
    """
    level = badge.level(award.level) if award.level else None
    return {
        "@context": [VC2_CONTEXT, OB3_CONTEXT],
        "id": urls.credential_v3(award.uid),
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": _class_name(badge, level),
        "description": _description(badge, level),
        "image": {"id": urls.baked_png(award.uid), "type": "Image"},
        "issuer": profile_v3(urls, issuer),
        "validFrom": iso(award.awarded_at),
        "awardedDate": iso(award.awarded_at),
        "credentialSubject": {
            "id": subject,
            "type": ["AchievementSubject"],
            "identifier": [
                {
                    "type": "IdentityObject",
                    "identityType": _IDENTITY_TYPES_V3.get(award.recipient_type, "identifier"),
                    "hashed": True,
                    "salt": award.salt,
                    "identityHash": award.recipient_hash,
                }
            ],
            "achievement": achievement_v3(urls, issuer, badge, level),
        },
    }


def revoked_credential_v3(urls: Urls, award: Award) -> dict[str, Any]:
    """What the OB 3.0 URL of a revoked award answers (with ``410 Gone``)."""
    return {
        "id": urls.credential_v3(award.uid),
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "revoked": True,
        "revocationReason": award.revocation_reason or "revoked by the issuer",
    }


def to_json(doc: dict[str, Any]) -> str:
    """Compact JSON text of a document (what baking embeds)."""
    return msgspec.json.encode(doc).decode()


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG")
    chunks: list[tuple[bytes, bytes]] = []
    offset = len(PNG_SIGNATURE)
    while offset + 8 <= len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind = png[offset + 4 : offset + 8]
        data = png[offset + 8 : offset + 8 + length]
        if len(data) != length:
            raise ValueError("truncated PNG chunk")
        chunks.append((kind, data))
        offset += 12 + length
        if kind == b"IEND":
            break
    return chunks


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _text_keyword(kind: bytes, data: bytes) -> bytes | None:
    if kind not in (b"iTXt", b"tEXt", b"zTXt"):
        return None
    return data.split(b"\0", 1)[0]


def bake_png(png: bytes, text: str, *, keyword: str = PNG_KEYWORD) -> bytes:
    """``png`` with one uncompressed ``iTXt`` chunk ``keyword`` holding ``text``, before ``IEND``.

    Any earlier chunk with that keyword is dropped, so re-baking replaces rather than duplicates.

    Raises:
        ValueError: ``png`` is not a PNG.
    """
    key = keyword.encode("latin-1")
    payload = key + b"\0" + b"\0\0" + b"\0" + b"\0" + text.encode("utf-8")
    out = [PNG_SIGNATURE]
    for kind, data in _chunks(png):
        if _text_keyword(kind, data) == key:
            continue
        if kind == b"IEND":
            out.append(_chunk(b"iTXt", payload))
        out.append(_chunk(kind, data))
    return b"".join(out)


def read_png_text(png: bytes, *, keyword: str = PNG_KEYWORD) -> str | None:
    """The text of the first ``iTXt`` chunk called ``keyword`` (uncompressed), or ``None``.

    Raises:
        ValueError: ``png`` is not a PNG.
    """
    key = keyword.encode("latin-1")
    for kind, data in _chunks(png):
        if kind != b"iTXt" or _text_keyword(kind, data) != key:
            continue
        rest = data[len(key) + 1 :]
        compressed = rest[0]
        _lang, _, rest = rest[2:].partition(b"\0")
        _translated, _, text = rest.partition(b"\0")
        return (zlib.decompress(text) if compressed else text).decode("utf-8")
    return None


_SVG_ROOT = re.compile(r"<svg\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*?(/?)>", re.IGNORECASE)


def bake_svg(svg: str, *, assertion: str, verify: str) -> str:
    """``svg`` with ``<openbadges:assertion verify=…>`` (the JSON in CDATA) as the root's first child.

    Raises:
        ValueError: no ``<svg>`` root element was found.
    """
    match = _SVG_ROOT.search(svg)
    if match is None:
        raise ValueError("not an SVG document")
    open_tag = match.group(0)
    self_closing = bool(match.group(1))
    if self_closing:
        open_tag = open_tag[:-2].rstrip() + ">"
    if "xmlns:openbadges=" not in open_tag:
        open_tag = open_tag[:-1] + f' xmlns:openbadges="{OB2_SVG_NS}">'
    body = assertion.replace("]]>", "]]]]><![CDATA[>")
    element = f"<openbadges:assertion verify={quoteattr(verify)}><![CDATA[{body}]]></openbadges:assertion>"
    tail = "</svg>" if self_closing else ""
    return svg[: match.start()] + open_tag + element + tail + svg[match.end() :]


def read_svg_assertion(svg: str) -> tuple[str, str] | None:
    """The ``verify`` URL and the JSON text of the first ``openbadges:assertion`` element, or ``None``."""
    root = ET.fromstring(svg)
    for element in root.iter(f"{{{OB2_SVG_NS}}}assertion"):
        return element.get("verify", ""), (element.text or "")
    return None
