"""Segment's own Python library (``segment-analytics-python``) pointed at a live Questline on loopback."""

import httpx
import pytest

from tests.browser.servers import SECRET_KEY, questline_server

analytics = pytest.importorskip("segment.analytics", reason="segment-analytics-python is a test dependency")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with questline_server(tmp_path_factory.mktemp("segment"), secret="segment-library-tests-secret-0123456789") as (
        url,
        _,
    ):
        yield url


@pytest.mark.parametrize("gzip", [False, True])
def test_the_real_library_tracks_and_identifies(live, gzip):
    errors = []
    client = analytics.Client(
        write_key=SECRET_KEY,
        host=f"{live}/segment",
        sync_mode=True,
        gzip=gzip,
        on_error=lambda e, batch: errors.append(e),
    )
    user = f"lib-user-{int(gzip)}"
    client.identify(user, {"name": "Lib User", "plan": "gold"})
    client.track(user, "Order Completed", {"order_id": "o-1", "revenue": 12.0, "currency": "EUR"})
    client.flush()
    assert errors == []
    member = httpx.get(f"{live}/v1/members/{user}", headers={"Authorization": f"Bearer {SECRET_KEY}"}).json()
    assert member["display_name"] == "Lib User"
    assert member["attributes"] == {"plan": "gold"}
    assert member["points"] >= 12  # 1 point per euro, doubled during the demo's double-points weekend


def test_a_wrong_write_key_is_refused(live):
    from segment.analytics.request import APIError, post

    with pytest.raises(APIError) as caught:
        post(
            "sk_wrong", host=f"{live}/segment", batch=[{"type": "track", "userId": "x", "event": "e", "messageId": "m"}]
        )
    assert caught.value.status == 401
