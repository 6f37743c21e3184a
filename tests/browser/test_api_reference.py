"""The API reference at /schema renders with no network beyond this server (its assets are vendored)."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.browser


def test_the_api_reference_renders_offline(live_server, page):
    origin = urlparse(live_server.url).netloc
    refused: list[str] = []

    def only_this_server(route):
        if urlparse(route.request.url).netloc == origin:
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    # Swagger UI draws only the operations near the viewport: a tall one shows the whole reference at once.
    page.set_viewport_size({"width": 1280, "height": 12_000})
    page.goto(f"{live_server.url}/schema")
    page.locator(".swagger-ui .opblock-tag").first.wait_for(timeout=15_000)
    assert page.locator(".swagger-ui .opblock").count() > 50
    page.locator(".swagger-ui .btn.authorize").wait_for()  # the security schemes are declared
    assert refused == []
