"""The OpenAPI document: security schemes, problem responses, closed request schemas, an offline reference."""

import re

import pytest

PROBLEM = "application/problem+json"
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
async def doc(client):
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(doc):
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


async def test_the_document_declares_its_security_schemes(doc):
    schemes = doc["components"]["securitySchemes"]
    assert schemes["secretKey"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "sk_live_…",
        "description": schemes["secretKey"]["description"],
    }
    assert (schemes["secretKeyHeader"]["type"], schemes["secretKeyHeader"]["in"]) == ("apiKey", "header")
    assert schemes["secretKeyHeader"]["name"] == "X-Api-Key"
    assert (schemes["publishableKey"]["in"], schemes["publishableKey"]["name"]) == ("query", "key")
    assert (schemes["consoleSession"]["in"], schemes["consoleSession"]["name"]) == ("cookie", "ql_console")


async def test_every_keyed_operation_says_which_key(doc):
    public = ("/ob/", "/art/", "/health", "/hooks/")  # platform webhooks carry an HMAC signature, not a key
    for path, method, operation in operations(doc):
        names = {name for requirement in operation.get("security", []) for name in requirement}
        if path.startswith(public):
            assert not names, (method, path)
        elif path.startswith("/widgets/v1/"):
            assert names == {"publishableKey"}, (method, path)
        elif path.startswith("/segment/"):
            assert names == {"segmentWriteKey", "secretKey"}, (method, path)
        elif method == "get" and path in ("/v1/leaderboards", "/v1/leaderboards/{key}"):
            assert names == {"secretKey", "secretKeyHeader", "publishableKey"}, path
        else:
            assert names == {"secretKey", "secretKeyHeader"}, (method, path)
        if names:
            assert {"401", "403"} <= set(operation["responses"]), (method, path)


async def test_errors_are_documented_as_problems(doc):
    for path, method, operation in operations(doc):
        responses = operation["responses"]
        for status, response in responses.items():
            if int(status) >= 400 and status != "410":  # a revoked award answers its JSON-LD document
                assert list(response["content"]) == [PROBLEM], (method, path, status)
                assert response["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
        if "{" in path:
            assert "404" in responses and "422" in responses, (method, path)
    events = doc["paths"]["/v1/events"]["post"]["responses"]
    assert {"200", "400", "413", "415", "422"} <= set(events)
    assert "409" in doc["paths"]["/v1/badges/{key}"]["delete"]["responses"]
    assert set(doc["paths"]["/v1/members"]["post"]["responses"]) >= {"200", "201"}
    problem = doc["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert "additionalProperties" not in problem  # problems may carry extension members


async def test_request_schemas_refuse_unknown_fields(doc):
    schemas = doc["components"]["schemas"]
    for name in ("Event", "EventBatch", "MemberIn", "Adjustment", "WebhookEndpointIn", "BadgeSpec", "BoardSpec"):
        assert schemas[name]["additionalProperties"] is False, name


async def test_unknown_fields_are_refused_as_the_document_says(client, brand):
    response = await client.post("/v1/members", json={"external_id": "anna", "nickname": "A"}, headers=brand.headers)
    assert response.status_code == 422
    assert response.json()["field"] == "$.nickname"


async def test_405_names_the_allowed_methods(client, brand):
    response = await client.patch("/v1/webhooks", json={}, headers=brand.headers)
    assert response.status_code == 405
    assert response.headers["content-type"].startswith(PROBLEM)
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "POST", "OPTIONS"}


async def test_the_api_reference_loads_only_its_own_assets(client):
    for path in ("/schema", "/schema/swagger"):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert "text/html" in page.headers["content-type"]
        urls = re.findall(r"""(?:src|href)\s*=\s*['"]([^'"]+)['"]""", page.text)
        assert len(urls) >= 4, urls
        for url in urls:
            assert url.startswith("/") and not url.startswith("//"), url
            asset = await client.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 500, url
        assert "swagger-ui-bundle.js" in page.text


def _documented(doc, path, response):
    """Find the operation of a concrete path and check its status and content type are documented."""
    segments = path.split("/")
    for template, item in doc["paths"].items():
        parts = template.split("/")
        same = len(parts) == len(segments) and all(
            p == s or (p.startswith("{") and p.endswith("}")) for p, s in zip(parts, segments, strict=True)
        )
        if same and "get" in item:
            declared = item["get"]["responses"].get(str(response.status_code))
            assert declared is not None, (path, response.status_code)
            media = response.headers.get("content-type", "").split(";")[0]
            assert media in (declared.get("content") or {}) or (not media and not declared.get("content")), (
                path,
                media,
                list(declared.get("content") or {}),
            )
            return
    raise AssertionError(f"{path} is not documented")


async def test_public_documents_and_images_answer_what_the_document_says(client, brand, doc):
    from urllib.parse import urlparse

    badge = {"key": "critic", "name": "Critic", "repeatable": False}
    assert (await client.put("/v1/badges/critic", json=badge, headers=brand.headers)).status_code == 201
    assert (await client.post("/v1/members", json={"external_id": "anna"}, headers=brand.headers)).status_code == 201
    granted = await client.post("/v1/members/anna/badges/critic/grant", json={"reason": "test"}, headers=brand.headers)
    award = granted.json()["award"]
    slug = brand.brand.slug
    paths = [urlparse(award[name]).path for name in ("assertion", "credential", "baked_png", "baked_svg")]
    paths += [
        f"/ob/v2/issuers/{slug}",
        f"/ob/v3/issuers/{slug}",
        f"/ob/v2/badgeclasses/{slug}/critic",
        f"/ob/v3/achievements/{slug}/critic",
        f"/art/{slug}/critic/image.svg",
        f"/art/{slug}/critic/image.png",
    ]
    for path in paths:
        response = await client.get(path)
        assert response.status_code == 200, (path, response.text[:200])
        _documented(doc, path, response)
        if "etag" in response.headers:
            again = await client.get(path, headers={"If-None-Match": response.headers["etag"]})
            assert again.status_code == 304
            _documented(doc, path, again)
    revoked = await client.post(
        "/v1/members/anna/badges/critic/revoke", json={"reason": "mistake"}, headers=brand.headers
    )
    assert revoked.status_code == 200, revoked.text
    for name in ("assertion", "credential", "baked_png"):
        path = urlparse(award[name]).path
        response = await client.get(path)
        assert response.status_code == 410, path
        _documented(doc, path, response)


async def test_rate_limits_and_outages_are_declared_where_they_can_happen(doc):
    """Every keyed /v1 operation can answer 429 (its key's bucket) and 503 (the database does not answer)."""
    keyed = 0
    for path, method, operation in operations(doc):
        responses = operation["responses"]
        if operation.get("security") and path.startswith("/v1/"):
            keyed += 1
            assert {"429", "503"} <= set(responses), (method, path)
            assert responses["429"]["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert keyed > 50
    assert "503" in doc["paths"]["/health/ready"]["get"]["responses"]
    assert "429" not in doc["paths"]["/health/live"]["get"]["responses"]
