"""The README's first example is what the demo answers; the demo's printed curl gets a fresh event id each run;
``.ci/run`` waits for the dpkg lock."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from engine.clock import FrozenClock
from engine.events import Event
from engine.settings import load_settings
from tests.conftest import TEST_SECRET
from web.wiring import open_services


def _readme_example() -> dict[str, object]:
    text = Path("README.md").read_text()
    block = text.split("```", 2)[1]
    points = re.search(r'"points": (\d+)', block)
    multiplier = re.search(r'"multiplier": ([\d.]+)', block)
    assert points and multiplier
    return {"points": int(points.group(1)), "multiplier": float(multiplier.group(1))}


async def test_the_readme_example_is_what_the_demos_curl_answers(tmp_path):
    from web.demo import banner, ensure_demo

    settings = load_settings({}, database_url=f"sqlite+aiosqlite:///{tmp_path}/demo.db", demo=True, secret=TEST_SECRET)
    clock = FrozenClock(datetime(2027, 3, 9, 15, 30, tzinfo=UTC))  # any day: the demo's week follows its start
    async with open_services(settings, clock=clock) as services:
        await ensure_demo(services)
        first, second = await banner(services), await banner(services)
        bodies = [json.loads(re.search(r"-d '(\{.*\})'", b, re.S).group(1)) for b in (first, second)]
        assert bodies[0]["id"] != bodies[1]["id"]
        from engine import tenants

        async with services.db.read() as session:
            brand = await tenants.get_brand(session, "demo")
        (result,) = await services.pipeline.process(brand, [msgspec.convert(bodies[0], Event, strict=False)])
    (awarded,) = [e for e in result.effects if type(e).__name__ == "PointsAwarded"]
    assert {"points": awarded.points, "multiplier": awarded.multiplier} == _readme_example()
    assert result.duplicate is False


def test_ci_waits_for_the_dpkg_lock():
    script = Path(".ci/run").read_text()
    calls = [line for line in script.splitlines() if re.search(r"\bapt-get\b", line) and "()" not in line]
    assert calls == [], calls  # every apt call goes through apt_get, which waits for the lock
    assert "DPkg::Lock::Timeout=300" in script


async def test_the_demo_has_a_catalog_redemptions_and_pending_and_expiring_points(tmp_path):
    from engine import point_views, tenants
    from engine.members import get_member
    from rewards.repository import list_redemptions, list_rewards
    from web.demo import MEMBERS, ensure_demo

    settings = load_settings({}, database_url=f"sqlite+aiosqlite:///{tmp_path}/demo.db", demo=True, secret=TEST_SECRET)
    clock = FrozenClock(datetime(2027, 3, 9, 15, 30, tzinfo=UTC))
    async with open_services(settings, clock=clock) as services:
        await ensure_demo(services)
        async with services.db.read() as session:
            brand = await tenants.get_brand(session, "demo")
            catalog = await list_rewards(session, brand_id=brand.id)
            redemptions = await list_redemptions(session, brand_id=brand.id)
            views = []
            for external_id, *_ in MEMBERS:
                member = await get_member(session, brand_id=brand.id, external_id=external_id)
                views.append(await point_views.points_view(session, brand=brand, member_id=member.id, now=clock.now()))
    types = {reward.spec.type for _, reward, _ in catalog}
    assert len(catalog) >= 4 and {"voucher", "donation"} <= types
    assert redemptions
    assert any(v.pending for v in views) and any(v.expiring for v in views)
