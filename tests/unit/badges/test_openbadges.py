import hashlib
import json
import struct
import zlib
from datetime import UTC, datetime

import pytest

from badges import openbadges as ob
from badges.art import art_spec, render_png, render_svg
from badges.models import Award, BadgeSpec, LevelSpec, RuleSpec, build_badge

URLS = ob.Urls("https://engage.example.com/")
ISSUER = ob.issuer_info(
    slug="acme",
    name="Acme Coffee",
    settings={"email": "rewards@acme.example", "url": "https://acme.example"},
    origin="https://engage.example.com",
)
BADGE = build_badge(
    BadgeSpec(
        key="critic",
        name="Critic",
        description="Wrote reviews.",
        category="community",
        rule=RuleSpec(event_type="review"),
        levels=[LevelSpec(key="bronze", threshold=1), LevelSpec(key="gold", threshold=5)],
    )
)
SALT = "8c1f00aa11bb22cc"
IDENTITY = "giulia@example.com"
AWARD = Award(
    uid="0f6c1e2a9d8b4c7e8f90a1b2c3d4e5f6",
    member_id=7,
    badge="critic",
    level="gold",
    instance="",
    source="rule",
    source_ref="",
    reason="5 review events",
    points=0,
    awarded_at=datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
    recipient_type="email",
    recipient_hash=ob.hash_identity(IDENTITY, SALT),
    salt=SALT,
)


def test_identity_hash_is_sha256_of_identity_then_salt():
    expected = "sha256$" + hashlib.sha256((IDENTITY + SALT).encode()).hexdigest()
    assert ob.hash_identity(IDENTITY, SALT) == expected
    assert ob.recipient_identity(attributes={"email": " Giulia@Example.com "}, fallback="x") == ("email", IDENTITY)
    assert ob.recipient_identity(attributes={}, fallback="https://q/ob/recipients/acme/m1") == (
        "url",
        "https://q/ob/recipients/acme/m1",
    )


def test_a_fallback_given_as_a_callable_is_made_only_for_a_member_without_an_email():
    made: list[str] = []

    def fallback() -> str:
        made.append("url")
        return "https://q/ob/recipients/acme/m1"

    assert ob.recipient_identity(attributes={"email": "a@b.example"}, fallback=fallback) == ("email", "a@b.example")
    assert made == []
    assert ob.recipient_identity(attributes={"email": "not an address"}, fallback=fallback) == (
        "url",
        "https://q/ob/recipients/acme/m1",
    )
    assert made == ["url"]


def test_ob2_issuer_badge_class_and_assertion_carry_the_required_fields():
    issuer = ob.issuer_v2(URLS, ISSUER)
    assert issuer == {
        "@context": "https://w3id.org/openbadges/v2",
        "type": "Issuer",
        "id": "https://engage.example.com/ob/v2/issuers/acme",
        "name": "Acme Coffee",
        "url": "https://acme.example",
        "email": "rewards@acme.example",
    }
    badge_class = ob.badge_class_v2(URLS, ISSUER, BADGE, BADGE.level("gold"))
    assert badge_class == {
        "@context": "https://w3id.org/openbadges/v2",
        "type": "BadgeClass",
        "id": "https://engage.example.com/ob/v2/badgeclasses/acme/critic/gold",
        "name": "Critic — Gold",
        "description": "Wrote reviews.",
        "image": "https://engage.example.com/art/acme/critic/image.png?level=gold",
        "criteria": {"narrative": "Gold: record 5 review events."},
        "issuer": "https://engage.example.com/ob/v2/issuers/acme",
        "tags": ["community"],
    }
    assertion = ob.assertion_v2(URLS, ISSUER, BADGE, AWARD)
    assert assertion == {
        "@context": "https://w3id.org/openbadges/v2",
        "type": "Assertion",
        "id": "https://engage.example.com/ob/v2/assertions/0f6c1e2a9d8b4c7e8f90a1b2c3d4e5f6",
        "recipient": {"type": "email", "hashed": True, "salt": SALT, "identity": ob.hash_identity(IDENTITY, SALT)},
        "badge": "https://engage.example.com/ob/v2/badgeclasses/acme/critic/gold",
        "issuedOn": "2026-11-20T10:00:00Z",
        "verification": {"type": "HostedBadge"},
        "image": "https://engage.example.com/ob/v2/assertions/0f6c1e2a9d8b4c7e8f90a1b2c3d4e5f6/baked.png",
        "narrative": "5 review events",
    }
    assert IDENTITY not in json.dumps(assertion)


def test_revoked_assertion_says_so():
    revoked = AWARD.__class__(
        **{
            **{f: getattr(AWARD, f) for f in AWARD.__struct_fields__},
            "revoked_at": datetime(2026, 11, 21, tzinfo=UTC),
            "revocation_reason": "fraud",
        }
    )
    doc = ob.assertion_v2(URLS, ISSUER, BADGE, revoked)
    assert doc["revoked"] is True
    assert doc["revocationReason"] == "fraud"
    assert ob.revoked_credential_v3(URLS, revoked) == {
        "id": "https://engage.example.com/ob/v3/credentials/0f6c1e2a9d8b4c7e8f90a1b2c3d4e5f6",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "revoked": True,
        "revocationReason": "fraud",
    }


def test_ob3_credential_carries_the_required_fields():
    subject = ob.subject_id("server-secret", brand_id=1, member_id=7)
    assert subject == ob.subject_id("server-secret", brand_id=1, member_id=7)
    assert subject != ob.subject_id("server-secret", brand_id=1, member_id=8)
    assert subject.startswith("urn:uuid:")
    doc = ob.credential_v3(URLS, ISSUER, BADGE, AWARD, subject=subject)
    assert doc["@context"] == [
        "https://www.w3.org/ns/credentials/v2",
        "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
    ]
    assert doc["id"] == "https://engage.example.com/ob/v3/credentials/0f6c1e2a9d8b4c7e8f90a1b2c3d4e5f6"
    assert doc["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert doc["name"] == "Critic — Gold"
    assert doc["validFrom"] == "2026-11-20T10:00:00Z"
    assert doc["issuer"] == {
        "id": "https://engage.example.com/ob/v3/issuers/acme",
        "type": ["Profile"],
        "name": "Acme Coffee",
        "url": "https://acme.example",
        "email": "rewards@acme.example",
    }
    subject_doc = doc["credentialSubject"]
    assert subject_doc["id"] == subject
    assert subject_doc["type"] == ["AchievementSubject"]
    assert subject_doc["identifier"] == [
        {
            "type": "IdentityObject",
            "identityType": "emailAddress",
            "hashed": True,
            "salt": SALT,
            "identityHash": ob.hash_identity(IDENTITY, SALT),
        }
    ]
    achievement = subject_doc["achievement"]
    assert achievement["id"] == "https://engage.example.com/ob/v3/achievements/acme/critic/gold"
    assert achievement["type"] == ["Achievement"]
    assert achievement["name"] == "Critic — Gold"
    assert achievement["description"] == "Wrote reviews."
    assert achievement["criteria"] == {"narrative": "Gold: record 5 review events."}
    assert IDENTITY not in json.dumps(doc)


def _chunk_types(png: bytes) -> list[bytes]:
    types, offset = [], 8
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind = png[offset + 4 : offset + 8]
        data = png[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", png[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + data) & 0xFFFFFFFF
        types.append(kind)
        offset += 12 + length
    return types


def test_bake_png_adds_one_uncompressed_itxt_before_iend_and_rebaking_replaces_it():
    png = render_png(art_spec(BADGE, level="gold", default_color="#2563eb"), 64)
    text = ob.to_json(ob.assertion_v2(URLS, ISSUER, BADGE, AWARD))
    baked = ob.bake_png(png, text)
    types = _chunk_types(baked)
    assert types[-2:] == [b"iTXt", b"IEND"]
    assert types.count(b"iTXt") == 1
    start = baked.index(b"iTXtopenbadges\x00") + 4
    assert baked[start : start + 15] == b"openbadges\x00\x00\x00\x00\x00"  # no compression, empty language/keyword
    assert ob.read_png_text(baked) == text
    rebaked = ob.bake_png(baked, '{"id":"other"}')
    assert _chunk_types(rebaked).count(b"iTXt") == 1
    assert ob.read_png_text(rebaked) == '{"id":"other"}'
    assert ob.read_png_text(png) is None
    with pytest.raises(ValueError, match="not a PNG"):
        ob.bake_png(b"GIF89a", text)


def test_bake_svg_puts_the_assertion_first_in_the_root():
    svg = render_svg(art_spec(BADGE, level="bronze", default_color="#2563eb"))
    text = ob.to_json({"id": "https://engage.example.com/ob/v2/assertions/x", "narrative": "a]]>b"})
    baked = ob.bake_svg(svg, assertion=text, verify="https://engage.example.com/ob/v2/assertions/x")
    assert 'xmlns:openbadges="http://openbadges.org"' in baked
    assert baked.index("<openbadges:assertion") < baked.index("<title>")
    assert ob.read_svg_assertion(baked) == ("https://engage.example.com/ob/v2/assertions/x", text)
    assert ob.read_svg_assertion(svg) is None
    self_closing = ob.bake_svg('<svg xmlns="http://www.w3.org/2000/svg"/>', assertion="{}", verify="u")
    assert ob.read_svg_assertion(self_closing) == ("u", "{}")
    with pytest.raises(ValueError, match="not an SVG"):
        ob.bake_svg("<html></html>", assertion="{}", verify="u")
