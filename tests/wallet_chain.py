"""A certificate chain like Apple's for tests: root CA → WWDR-like intermediate → Pass Type ID certificate."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

PASS_TYPE = "pass.com.example.loyalty"
TEAM = "ABCDE12345"


@dataclass(frozen=True)
class Chain:
    root_pem: str
    wwdr_pem: str
    cert_pem: str
    key_pem: str
    other_key_pem: str
    """A key that does not belong to the certificate."""


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _cert(subject: x509.Name, issuer: x509.Name, public: rsa.RSAPublicKey, signer: rsa.RSAPrivateKey, *, ca: bool):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )


@functools.cache
def chain() -> Chain:
    """Made once per test session (RSA key generation is the slow part)."""
    root_key, wwdr_key, pass_key = _key(), _key(), _key()
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Root CA")])
    wwdr_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Test Worldwide Developer Relations"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "G4"),
        ]
    )
    pass_name = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, PASS_TYPE),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Pass Type ID: {PASS_TYPE}"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, TEAM),
        ]
    )
    root = _cert(root_name, root_name, root_key.public_key(), root_key, ca=True)
    wwdr = _cert(wwdr_name, root_name, wwdr_key.public_key(), root_key, ca=True)
    cert = _cert(pass_name, wwdr_name, pass_key.public_key(), wwdr_key, ca=False)
    pem = serialization.Encoding.PEM
    return Chain(
        root_pem=root.public_bytes(pem).decode(),
        wwdr_pem=wwdr.public_bytes(pem).decode(),
        cert_pem=cert.public_bytes(pem).decode(),
        key_pem=_pem_key(pass_key),
        other_key_pem=_pem_key(wwdr_key),
    )


def apple_settings(**overrides: object) -> dict[str, object]:
    """The body of ``PUT /v1/wallet/apple`` for the test chain."""
    c = chain()
    body: dict[str, object] = {
        "pass_type_identifier": PASS_TYPE,
        "team_identifier": TEAM,
        "organization_name": "Example Coffee",
        "certificate_pem": c.cert_pem,
        "private_key_pem": c.key_pem,
        "wwdr_pem": c.wwdr_pem,
        "background_color": "#0a3d62",
    }
    body.update(overrides)
    return body


def google_settings(**overrides: object) -> dict[str, object]:
    """The body of ``PUT /v1/wallet/google`` (the pass key doubles as the service account's RSA key)."""
    body: dict[str, object] = {
        "issuer_id": "3388000000012345678",
        "service_account_email": "wallet@example-coffee.iam.gserviceaccount.com",
        "private_key_pem": chain().key_pem,
        "program_name": "Coffee Club",
        "origins": ["https://shop.example.com"],
    }
    body.update(overrides)
    return body
