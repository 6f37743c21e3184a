"""Signing and packing a ``.pkpass``: ``manifest.json`` (SHA-1 of every file), ``signature`` (PKCS#7), a zip.

The signature is a detached PKCS#7 (CMS) ``SignedData`` over the manifest's bytes, made with the brand's Pass
Type ID certificate and key, carrying Apple's WWDR intermediate and a signing time (Wallet refuses passes
without one), in DER form. The ``cryptography`` package makes it; nothing here touches the network or disk.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7

from engine.errors import ValidationError


@dataclass(frozen=True, slots=True)
class SigningIdentity:
    """A Pass Type ID certificate, its key, and the WWDR intermediate that issued it."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    wwdr: x509.Certificate


def load_identity(certificate_pem: str, private_key_pem: str, wwdr_pem: str, *, now: datetime) -> SigningIdentity:
    """Parse and check a signing identity: the key matches the certificate, which is current and issued by WWDR.

    Raises:
        ValidationError: naming the field that is unreadable or does not fit.
    """
    try:
        certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    except ValueError as exc:
        raise ValidationError("the certificate is not a PEM X.509 certificate", field="$.certificate_pem") from exc
    try:
        wwdr = x509.load_pem_x509_certificate(wwdr_pem.encode())
    except ValueError as exc:
        raise ValidationError("the WWDR certificate is not a PEM X.509 certificate", field="$.wwdr_pem") from exc
    try:
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ValidationError("the private key is not an unencrypted PEM key", field="$.private_key_pem") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValidationError("the private key must be an RSA or EC key", field="$.private_key_pem")
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, public) != certificate.public_key().public_bytes(der, public):
        raise ValidationError("the private key does not belong to the certificate", field="$.private_key_pem")
    if certificate.issuer != wwdr.subject:
        raise ValidationError("the certificate was not issued by this WWDR certificate", field="$.wwdr_pem")
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise ValidationError("the certificate is not valid now (expired or not yet valid)", field="$.certificate_pem")
    return SigningIdentity(certificate=certificate, key=key, wwdr=wwdr)


def manifest(files: dict[str, bytes]) -> bytes:
    """``manifest.json``: each file's name → the hex SHA-1 of its bytes (what Wallet checks)."""
    digests = {name: hashlib.sha1(data, usedforsecurity=False).hexdigest() for name, data in sorted(files.items())}
    return json.dumps(digests, indent=2, sort_keys=True).encode()


def sign(manifest_bytes: bytes, identity: SigningIdentity) -> bytes:
    """The detached PKCS#7 signature (DER) of ``manifest_bytes``, with the WWDR certificate and a signing time."""
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(manifest_bytes)
        .add_signer(identity.certificate, identity.key, hashes.SHA256())
        .add_certificate(identity.wwdr)
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
    )


def pack(pass_document: dict[str, object], images: dict[str, bytes], identity: SigningIdentity) -> bytes:
    """The ``.pkpass`` archive: ``pass.json``, the images, ``manifest.json`` and ``signature``."""
    files = {"pass.json": json.dumps(pass_document, ensure_ascii=False, indent=2).encode(), **images}
    manifest_bytes = manifest(files)
    buffer = io.BytesIO()
    stamp = datetime.now(UTC).timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in [
            *files.items(),
            ("manifest.json", manifest_bytes),
            ("signature", sign(manifest_bytes, identity)),
        ]:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()
