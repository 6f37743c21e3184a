"""The console dashboard's overview figures, on both backends (PostgreSQL reads them in one grouped scan)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from web.pages import stats

SENT = [
    ("e1", "anna", "2026-11-14T09:00:00Z"),
    ("e2", "anna", "2026-11-14T10:00:00Z"),
    ("e3", "bruno", "2026-11-14T23:30:00Z"),  # 00:30 on the 15th in Rome: the brand's local day counts
    ("e4", "carla", "2026-11-17T08:00:00Z"),
    ("e5", "anna", "2026-11-19T12:00:00Z"),
    ("e6", "bruno", "2026-11-19T13:00:00Z"),
    ("e7", "bruno", "2026-11-19T14:00:00Z"),
    ("old", "dario", "2026-10-01T12:00:00Z"),  # outside the 7 days
]


async def test_overview_counts_events_and_distinct_members_per_local_day_and_overall(client, brand, db, clock):
    for event_id, member, at in SENT:
        body = {"id": event_id, "member": member, "type": "visit", "occurred_at": at}
        response = await client.post("/v1/events", json=body, headers=brand.headers)
        assert response.status_code == 200, response.text
    figures = await stats.overview(db, brand_id=brand.brand.id, tz=brand.brand.tz, now=clock.now(), days=7)
    events = {d.day: d.value for d in figures.events if d.value}
    active = {d.day: d.value for d in figures.active_members if d.value}
    expected_events: dict[date, int] = defaultdict(int)
    expected_members: dict[date, set[str]] = defaultdict(set)
    local = {"e3": date(2026, 11, 15)}
    for event_id, member, at in SENT[:-1]:
        day = local.get(event_id, date.fromisoformat(at[:10]))
        expected_events[day] += 1
        expected_members[day].add(member)
    assert events == {d: float(n) for d, n in expected_events.items()}
    assert active == {d: float(len(m)) for d, m in expected_members.items()}
    assert figures.events_total == 7
    assert figures.active_total == 3  # anna, bruno, carla: each once however many days they were active
    assert figures.members_total == 4
    assert len(figures.days) == 7 and figures.days[-1] == date(2026, 11, 20)
