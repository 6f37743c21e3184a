"""The .pkpass: manifest hashes of every file, a detached PKCS#7 signature openssl verifies; Google's JWT; sealing."""

import hashlib
import io
import json
import subprocess
import zipfile
from datetime import UTC, datetime

import jwt
import pytest
from cryptography import x509

from engine.errors import Conflict, ValidationError
from tests.wallet_chain import PASS_TYPE, TEAM, chain
from wallet import google, images, pkpass, sealing
from wallet.models import AppleSettings, CardState, ChallengeLine, GoogleSettings, PassIdentity, pass_json

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
STATE = CardState(
    member_code="m-giulia",
    name="Giulia",
    points=1250,
    tier="Gold",
    rank=3,
    rank_of=120,
    board="Monthly spenders",
    challenges=(ChallengeLine(key="coffee", title="Ten coffees", value=4, target=10, unit="coffees"),),
)


def _settings(**overrides) -> AppleSettings:
    c = chain()
    fields = {
        "pass_type_identifier": PASS_TYPE,
        "team_identifier": TEAM,
        "organization_name": "Example Coffee",
        "certificate_pem": c.cert_pem,
        "private_key_pem": c.key_pem,
        "wwdr_pem": c.wwdr_pem,
        **overrides,
    }
    return AppleSettings(**fields)


def _archive() -> dict[str, bytes]:
    settings = _settings(barcode="code128")
    identity = pkpass.load_identity(settings.certificate_pem, settings.private_key_pem, settings.wwdr_pem, now=NOW)
    document = pass_json(
        STATE,
        settings=settings,
        identity=PassIdentity(
            serial_number="serial-123456", authentication_token="t" * 32, web_service_url="https://x/passkit"
        ),
        brand_name="Example Coffee",
        accent="#0a3d62",
    )
    data = pkpass.pack(document, images.card_images("Example Coffee", colour="#0a3d62", ink="#ffffff"), identity)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _openssl_verify(tmp_path, manifest: bytes, signature: bytes) -> subprocess.CompletedProcess[bytes]:
    (tmp_path / "root.pem").write_text(chain().root_pem)
    (tmp_path / "manifest.json").write_bytes(manifest)
    (tmp_path / "signature").write_bytes(signature)
    return subprocess.run(
        ["openssl", "smime", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "signature"),
         "-content", str(tmp_path / "manifest.json"), "-CAfile", str(tmp_path / "root.pem"), "-purpose", "any",
         "-out", "/dev/null"],
        capture_output=True, check=False, timeout=30,
    )  # fmt: skip


def test_manifest_hashes_every_file_and_pass_json_carries_the_card():
    files = _archive()
    assert {"pass.json", "manifest.json", "signature", "icon.png", "icon@2x.png", "logo.png", "logo@2x.png"} == set(
        files
    )
    manifest = json.loads(files["manifest.json"])
    assert set(manifest) == set(files) - {"manifest.json", "signature"}
    for name, digest in manifest.items():
        assert hashlib.sha1(files[name], usedforsecurity=False).hexdigest() == digest, name
    card = json.loads(files["pass.json"])
    assert (card["passTypeIdentifier"], card["teamIdentifier"], card["serialNumber"]) == (
        PASS_TYPE,
        TEAM,
        "serial-123456",
    )
    assert card["barcodes"] == [
        {
            "format": "PKBarcodeFormatCode128",
            "message": "m-giulia",
            "messageEncoding": "iso-8859-1",
            "altText": "m-giulia",
        }
    ]
    store = card["storeCard"]
    assert store["headerFields"][0]["value"] == 1250
    assert {f["key"]: f["value"] for f in store["secondaryFields"]} == {"tier": "Gold", "rank": "#3 / 120"}
    assert store["auxiliaryFields"][0] == {"key": "challenge", "label": "Ten coffees", "value": "4 / 10 coffees"}
    assert card["webServiceURL"] == "https://x/passkit" and len(card["authenticationToken"]) >= 16
    assert card["backgroundColor"] == "rgb(10, 61, 98)"


def test_signature_is_a_detached_pkcs7_over_the_manifest_with_the_wwdr_intermediate(tmp_path):
    files = _archive()
    verified = _openssl_verify(tmp_path, files["manifest.json"], files["signature"])
    assert verified.returncode == 0, verified.stderr.decode()
    tampered = files["manifest.json"].replace(b'"pass.json"', b'"pass.jsoN"')
    refused = _openssl_verify(tmp_path, tampered, files["signature"])
    assert refused.returncode != 0
    (tmp_path / "sig.der").write_bytes(files["signature"])
    certs = subprocess.run(
        ["openssl", "pkcs7", "-inform", "DER", "-in", str(tmp_path / "sig.der"), "-print_certs", "-noout"],
        capture_output=True, check=True, timeout=30,
    ).stdout.decode()  # fmt: skip
    assert "Worldwide Developer Relations" in certs and PASS_TYPE in certs


def test_identity_checks_refuse_a_foreign_key_and_a_wrong_issuer():
    c = chain()
    with pytest.raises(ValidationError, match="does not belong") as foreign:
        pkpass.load_identity(c.cert_pem, c.other_key_pem, c.wwdr_pem, now=NOW)
    assert foreign.value.field == "$.private_key_pem"
    with pytest.raises(ValidationError, match="not issued") as issuer:
        pkpass.load_identity(c.cert_pem, c.key_pem, c.root_pem, now=NOW)
    assert issuer.value.field == "$.wwdr_pem"
    with pytest.raises(ValidationError, match="not valid now"):
        pkpass.load_identity(c.cert_pem, c.key_pem, c.wwdr_pem, now=datetime(2040, 1, 1, tzinfo=UTC))
    with pytest.raises(ValidationError):
        pkpass.load_identity("not a pem", c.key_pem, c.wwdr_pem, now=NOW)


def test_google_save_jwt_verifies_with_the_public_key_and_carries_the_object():
    c = chain()
    settings = GoogleSettings(
        issuer_id="3388000000012345678",
        service_account_email="wallet@example.iam.gserviceaccount.com",
        private_key_pem=c.key_pem,
        program_name="Coffee Club",
        origins=["https://shop.example.com"],
    )
    key = google.load_key(settings.private_key_pem)
    token = google.save_jwt(
        settings,
        key,
        loyalty_class=google.loyalty_class(settings, brand_slug="coffee", brand_name="Example Coffee", accent=None),
        loyalty_object=google.loyalty_object(settings, STATE, brand_slug="coffee"),
        now=NOW,
    )
    public = x509.load_pem_x509_certificate(c.cert_pem.encode()).public_key()
    claims = jwt.decode(token, public, algorithms=["RS256"], audience="google")
    assert (claims["iss"], claims["typ"], claims["origins"]) == (
        settings.service_account_email,
        "savetowallet",
        ["https://shop.example.com"],
    )
    (obj,) = claims["payload"]["loyaltyObjects"]
    assert obj["id"] == "3388000000012345678.coffee-m-giulia"
    assert obj["classId"] == claims["payload"]["loyaltyClasses"][0]["id"] == "3388000000012345678.coffee-loyalty"
    assert obj["loyaltyPoints"]["balance"] == {"int": 1250}
    assert obj["secondaryLoyaltyPoints"] == {"label": "Monthly spenders", "balance": {"string": "#3 / 120"}}
    assert {m["id"]: m["body"] for m in obj["textModulesData"]} == {
        "tier": "Gold",
        "challenge-coffee": "4 / 10 coffees",
    }
    wrong = x509.load_pem_x509_certificate(c.wwdr_pem.encode()).public_key()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, wrong, algorithms=["RS256"], audience="google")


def test_sealed_keys_open_only_for_their_brand_and_secret():
    sealed = sealing.seal("PRIVATE", secret="s" * 32, brand_id=7)
    assert "PRIVATE" not in sealed
    assert sealing.unseal(sealed, secret="s" * 32, brand_id=7) == "PRIVATE"
    with pytest.raises(Conflict):
        sealing.unseal(sealed, secret="s" * 32, brand_id=8)
    with pytest.raises(Conflict):
        sealing.unseal(sealed, secret="t" * 32, brand_id=7)


def test_fingerprint_changes_exactly_with_what_the_card_shows():
    same = CardState(**{f: getattr(STATE, f) for f in STATE.__struct_fields__})
    assert same.fingerprint() == STATE.fingerprint()
    for changed in ({"points": 1251}, {"tier": "Silver"}, {"rank": 2}, {"challenges": ()}):
        fields = {f: getattr(STATE, f) for f in STATE.__struct_fields__} | changed
        assert CardState(**fields).fingerprint() != STATE.fingerprint(), changed
