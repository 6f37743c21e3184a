"""Server-side session state: console sessions capped in absolute time, sign-in throttled per email and per
client, portal links claimed once, portal sessions ended for every copy of the cookie."""

from datetime import UTC, datetime, timedelta

import fakeredis
import pytest

from engine.ids import BrandId
from web.pages import sessions, tokens

NS = "qlunit"
T0 = 1_800_000_000.0


@pytest.fixture
async def redis():
    client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    yield client
    await client.aclose()


async def test_console_sessions_end_at_their_absolute_lifetime_however_active(redis):
    token = await sessions.open_session(redis, namespace=NS, admin_id=7, now=T0)
    for day in range(7):
        assert await sessions.session_admin(redis, namespace=NS, token=token, now=T0 + day * 86400 + 3600) == 7
    assert (
        await sessions.session_admin(redis, namespace=NS, token=token, now=T0 + sessions.MAX_LIFETIME_SECONDS) is None
    )
    assert await redis.exists(f"{NS}:console:session:{sessions._digest(token)}") == 0  # removed, not just refused


async def test_the_sliding_expiry_never_passes_the_deadline(redis):
    token = await sessions.open_session(redis, namespace=NS, admin_id=7, now=T0)
    near_end = T0 + sessions.MAX_LIFETIME_SECONDS - 60
    assert await sessions.session_admin(redis, namespace=NS, token=token, now=near_end) == 7
    assert await redis.ttl(f"{NS}:console:session:{sessions._digest(token)}") <= 60


async def test_one_client_spraying_many_emails_is_throttled_but_others_are_not(redis):
    for index in range(sessions.MAX_CLIENT_FAILURES):
        assert not await sessions.throttled(
            redis, namespace=NS, email=f"admin{index}@shop.example", client="203.0.113.9"
        )
        await sessions.record_failure(redis, namespace=NS, email=f"admin{index}@shop.example", client="203.0.113.9")
    assert await sessions.throttled(redis, namespace=NS, email="fresh@shop.example", client="203.0.113.9")
    assert not await sessions.throttled(redis, namespace=NS, email="fresh@shop.example", client="198.51.100.7")
    # a successful sign-in of one account does not reset the client's count
    await sessions.clear_failures(redis, namespace=NS, email="admin0@shop.example")
    assert await sessions.throttled(redis, namespace=NS, email="other@shop.example", client="203.0.113.9")


async def test_failures_per_email_still_count(redis):
    for index in range(sessions.MAX_FAILURES):
        await sessions.record_failure(redis, namespace=NS, email="boss@shop.example", client=f"10.0.0.{index}")
    assert await sessions.throttled(redis, namespace=NS, email="Boss@Shop.example ", client="10.9.9.9")


async def test_a_link_nonce_is_claimed_once_and_a_member_session_closes_everywhere(redis):
    now = datetime(2026, 11, 20, 10, tzinfo=UTC)
    link = tokens.sign(
        secret="s" * 32,
        purpose=tokens.Purpose.PORTAL_LINK,
        brand_id=BrandId(1),
        member="m",
        expires_at=now + timedelta(hours=1),
    )
    claims = tokens.verify(link, secret="s" * 32, purpose=tokens.Purpose.PORTAL_LINK, now=now)
    assert claims.nonce
    assert await sessions.consume_link(redis, namespace=NS, nonce=claims.nonce, seconds_left=3600)
    assert not await sessions.consume_link(redis, namespace=NS, nonce=claims.nonce, seconds_left=3600)
    assert not await sessions.consume_link(redis, namespace=NS, nonce="", seconds_left=3600)
    await sessions.open_member_session(redis, namespace=NS, nonce="sid", seconds=60)
    assert await sessions.member_session_open(redis, namespace=NS, nonce="sid")
    await sessions.close_member_session(redis, namespace=NS, nonce="sid")
    assert not await sessions.member_session_open(redis, namespace=NS, nonce="sid")
    assert not await sessions.member_session_open(redis, namespace=NS, nonce="")


def test_each_link_gets_its_own_nonce_and_widget_tokens_none():
    now = datetime(2026, 11, 20, 10, tzinfo=UTC)
    options = {"secret": "s" * 32, "brand_id": BrandId(1), "member": "m", "expires_at": now + timedelta(hours=1)}
    first = tokens.sign(purpose=tokens.Purpose.PORTAL_LINK, **options)
    second = tokens.sign(purpose=tokens.Purpose.PORTAL_LINK, **options)
    nonces = {
        tokens.verify(t, secret="s" * 32, purpose=tokens.Purpose.PORTAL_LINK, now=now).nonce for t in (first, second)
    }
    assert len(nonces) == 2
    widget = tokens.sign(purpose=tokens.Purpose.WIDGET_MEMBER, **options)
    assert tokens.verify(widget, secret="s" * 32, purpose=tokens.Purpose.WIDGET_MEMBER, now=now).nonce == ""
