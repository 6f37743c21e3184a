"""Leagues on both backends: cohorts of N, promotion and relegation exactly once, ties, mid-period joins, rewards."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from engine.ids import MemberId
from engine.member_locks import ensure_and_lock
from engine.points import balance
from leaderboards import repository as board_repo
from leaderboards import totals_repo
from leaderboards.models import BoardSpec, PointsMetric, Total
from leagues import repository as repo
from leagues import service
from leagues.models import Division, DivisionReward, LeagueSpec
from web.app import create_app  # noqa: F401  (loads web.pages before web.exports, as the app does)
from web.board_scores import board_scores

# The conftest clock: Friday 2026-11-20 10:00 UTC; the brand is in Europe/Rome, so week 2026-W47 ends on
# Monday 2026-11-23 00:00 Rome = Sunday 23:00 UTC.
T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
WEEK_END = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)
W47, W48 = "2026-W47", "2026-W48"


def league(**overrides) -> LeagueSpec:
    fields = {
        "key": "weekly",
        "title": "Weekly league",
        "board": "pts",
        "divisions": [
            Division(key="bronze", title="Bronze", rewards=[DivisionReward(from_rank=1, to_rank=1, points=10)]),
            Division(key="silver", title="Silver", rewards=[DivisionReward(from_rank=1, to_rank=2, points=50)]),
            Division(key="gold", title="Gold"),
        ],
        "cohort_size": 3,
        "promote": 1,
        "relegate": 1,
    }
    fields.update(overrides)
    return LeagueSpec(**fields)


async def setup(db, brand, spec: LeagueSpec, grace: int = 0) -> repo.League:
    async with db.write() as session:
        await board_repo.put_board(
            session,
            brand_id=brand.brand.id,
            spec=BoardSpec(key="pts", title="Points", metric=PointsMetric(), period="weekly", grace_minutes=grace),
            now=T0,
        )
        await repo.save_league(session, brand_id=brand.brand.id, spec=spec, now=T0)
        return await repo.get_league(session, brand_id=brand.brand.id, key=spec.key)


async def score(db, brand, period: str, **points: int | tuple[int, datetime]) -> dict[str, int]:
    """Set members' board totals of ``period`` (name=units, or name=(units, reached_at)); returns their ids."""
    async with db.write() as session:
        board = await board_repo.get_board(session, brand_id=brand.brand.id, key="pts")
        members = await ensure_and_lock(session, db=db, brand_id=brand.brand.id, external_ids=list(points), now=T0)
        rows = []
        for index, (name, value) in enumerate(points.items()):
            units, reached = value if isinstance(value, tuple) else (value, T0 + timedelta(seconds=index))
            rows.append(
                Total(
                    board_id=board.id,
                    period=period,
                    scope="",
                    member_id=members[name].id,
                    units=units,
                    reached_at=reached,
                )
            )
        await totals_repo.upsert_totals(session, brand_id=brand.brand.id, family="latest", rows=rows, now=T0)
    return {name: m.id for name, m in members.items()}


async def seats_by_name(db, league_id: int, period: str, ids: dict[str, int]) -> dict[str, repo.Seat]:
    names = {v: k for k, v in ids.items()}
    async with db.read() as session:
        return {names[s.member_id]: s for s in await repo.seats(session, league_id=league_id, period=period)}


async def run(db, now, brand=None):
    return await service.run_round(db, scores=board_scores, now=now, brand_id=brand.brand.id if brand else None)


async def test_scorers_fill_cohorts_of_n_in_join_order(db, brand):
    lg = await setup(db, brand, league())
    ids = await score(db, brand, W47, a=5, b=9, c=1, d=7, e=3, f=2, g=8)
    report = await run(db, T0, brand)
    assert report.placed == 7
    seats = await seats_by_name(db, lg.id, W47, ids)
    # join order is who reached their score first (a, b, c, … here), not how high it is
    assert {n: (s.division, s.cohort, s.seq) for n, s in seats.items()} == {
        "a": ("bronze", 1, 1), "b": ("bronze", 1, 2), "c": ("bronze", 1, 3),
        "d": ("bronze", 2, 4), "e": ("bronze", 2, 5), "f": ("bronze", 2, 6),
        "g": ("bronze", 3, 7),
    }  # fmt: skip
    assert (await run(db, T0 + timedelta(minutes=1), brand)).placed == 0  # a second round seats no one twice


async def test_concurrent_rounds_seat_each_member_once_and_never_overfill_a_cohort(db, brand):
    lg = await setup(db, brand, league())
    ids = await score(db, brand, W47, **{f"m{i}": i for i in range(8)})
    reports = await asyncio.gather(*(run(db, T0, brand) for _ in range(3)))
    assert sum(r.placed for r in reports) == 8
    seats = await seats_by_name(db, lg.id, W47, ids)
    sizes = [sum(1 for s in seats.values() if s.cohort == c) for c in (1, 2, 3)]
    assert (len(seats), sizes) == (8, [3, 3, 2])


async def test_member_joining_mid_period_takes_the_open_cohort(db, brand):
    lg = await setup(db, brand, league())
    ids = await score(db, brand, W47, a=5, b=4, c=3, d=2)
    await run(db, T0, brand)
    later = T0 + timedelta(days=1)
    ids |= await score(db, brand, W47, late=(1, later), later=(9, later + timedelta(seconds=1)))
    await run(db, later, brand)
    seats = await seats_by_name(db, lg.id, W47, ids)
    assert (seats["d"].cohort, seats["late"].cohort, seats["later"].cohort) == (2, 2, 2)
    assert seats["late"].seq == 5
    await run(db, WEEK_END, brand)
    seats = await seats_by_name(db, lg.id, W47, ids)
    # in cohort 2 (d=2, late=1, later=9) the latecomer who scored most is promoted at the close
    assert (seats["later"].zone, seats["later"].rank) == ("promotion", 1)
    async with db.read() as session:
        divisions = await repo.divisions_of(session, league_id=lg.id, member_ids=ids.values())
    assert divisions[ids["later"]] == "silver"
    assert divisions[ids["a"]] == "silver"
    assert divisions[ids["late"]] == "bronze"


async def test_period_closes_once_even_when_run_twice_and_concurrently(db, brand):
    lg = await setup(db, brand, league())
    ids = await score(db, brand, W47, a=30, b=20, c=10)
    async with db.write() as session:  # they play silver this week
        await repo.set_divisions(session, league=lg, divisions={i: "silver" for i in ids.values()}, now=T0)
    await run(db, T0, brand)
    assert (await run(db, WEEK_END - timedelta(seconds=1), brand)).closed == []  # not before the period's end
    async with db.read() as session:
        brand_row = brand.brand
    results = await asyncio.gather(
        *(
            service.close_period(db, league=lg, brand=brand_row, scores=board_scores, period=W47, now=WEEK_END)
            for _ in range(3)
        )
    )
    assert sorted(results) == [False, False, True]
    assert (await run(db, WEEK_END + timedelta(hours=1), brand)).closed == []
    seats = await seats_by_name(db, lg.id, W47, ids)
    assert {n: s.zone for n, s in seats.items()} == {"a": "promotion", "b": "stay", "c": "relegation"}
    async with db.read() as session:
        divisions = await repo.divisions_of(session, league_id=lg.id, member_ids=ids.values())
        balances = {n: await balance(session, brand_id=brand.brand.id, member_id=MemberId(i)) for n, i in ids.items()}
    assert divisions == {ids["a"]: "gold", ids["b"]: "silver", ids["c"]: "bronze"}
    assert balances == {"a": 50, "b": 50, "c": 0}  # silver pays ranks 1–2 once


async def test_ties_at_the_promotion_boundary_all_go_up_and_straddling_ties_stay(db, brand):
    lg = await setup(db, brand, league(cohort_size=6, promote=2, relegate=2))
    ids = await score(db, brand, W47, a=50, b=40, c=40, d=40, e=10, f=10)
    async with db.write() as session:
        await repo.set_divisions(session, league=lg, divisions={i: "silver" for i in ids.values()}, now=T0)
    await run(db, T0, brand)
    await run(db, WEEK_END, brand)
    seats = await seats_by_name(db, lg.id, W47, ids)
    assert {n: (s.rank, s.zone) for n, s in seats.items()} == {
        "a": (1, "promotion"), "b": (2, "promotion"), "c": (2, "promotion"), "d": (2, "promotion"),
        "e": (5, "relegation"), "f": (5, "relegation"),
    }  # fmt: skip
    ids2 = await score(db, brand, W48, a=50, b=40, c=40, d=40, e=30, f=10)
    await run(db, WEEK_END + timedelta(days=1), brand)  # a..d play gold, e and f bronze: two cohorts
    lg2 = await setup(db, brand, league(cohort_size=6, promote=1, relegate=2))
    assert lg2.id == lg.id
    seats2 = await seats_by_name(db, lg.id, W48, ids2)
    assert {n: s.division for n, s in seats2.items()} == {
        "a": "gold",
        "b": "gold",
        "c": "gold",
        "d": "gold",
        "e": "bronze",
        "f": "bronze",
    }
    await run(db, WEEK_END + timedelta(days=7), brand)
    seats2 = await seats_by_name(db, lg.id, W48, ids2)
    # gold relegates 2: the three tied at 40 straddle the boundary, so only … nobody below them: none go down
    assert {n: seats2[n].zone for n in "abcd"} == {"a": "stay", "b": "stay", "c": "stay", "d": "stay"}
    # bronze promotes 1 (the top), relegates nobody
    assert (seats2["e"].zone, seats2["f"].zone) == ("promotion", "stay")


async def test_next_period_waits_for_the_previous_close(db, brand):
    lg = await setup(db, brand, league(), grace=60)
    ids = await score(db, brand, W47, a=30, b=20, c=10)
    await run(db, T0, brand)
    ids |= await score(db, brand, W48, a=5, n=3)
    in_grace = WEEK_END + timedelta(minutes=30)
    report = await run(db, in_grace, brand)
    assert (report.closed, report.placed) == ([], 0)  # W47 still open: nobody is seated in W48 yet
    report = await run(db, WEEK_END + timedelta(minutes=61), brand)
    assert report.closed == [f"{brand.brand.id}/weekly/{W47}"]
    assert report.placed == 2
    seats = await seats_by_name(db, lg.id, W48, ids)
    assert (seats["a"].division, seats["n"].division) == ("silver", "bronze")


@pytest.mark.parametrize("period", ["all_time"])
async def test_a_board_without_calendar_periods_seats_no_one(db, brand, period):
    async with db.write() as session:
        await board_repo.put_board(
            session,
            brand_id=brand.brand.id,
            spec=BoardSpec(key="pts", title="P", metric=PointsMetric(), period=period),
            now=T0,
        )
        await repo.save_league(session, brand_id=brand.brand.id, spec=league(), now=T0)
    await score(db, brand, "all", a=3)
    assert (await run(db, T0, brand)).placed == 0


# --- HTTP ---------------------------------------------------------------------------------------------

BODY = {
    "key": "weekly",
    "title": "Weekly league",
    "board": "pts",
    "divisions": [{"key": "bronze", "title": "Bronze"}, {"key": "silver", "title": "Silver"}],
    "cohort_size": 3,
    "promote": 1,
    "relegate": 1,
}
BOARD = {"key": "pts", "title": "Points", "metric": {"kind": "points"}, "period": "weekly", "grace_minutes": 0}


async def test_api_defines_a_league_and_refuses_bad_ones_changing_nothing(client, brand):
    headers = brand.headers
    bad = await client.put("/v1/leagues/weekly", json=BODY, headers=headers)
    assert bad.status_code == 422 and bad.json()["field"] == "$.board"  # the board does not exist yet
    assert (await client.put("/v1/leaderboards/pts", json=BOARD, headers=headers)).status_code == 201
    for wrong, field in (({**BODY, "key": "other"}, "$.key"), ({**BODY, "promote": 2, "relegate": 2}, "$.promote")):
        response = await client.put("/v1/leagues/weekly", json=wrong, headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["field"] == field
    assert (await client.get("/v1/leagues/weekly", headers=headers)).status_code == 404
    created = await client.put("/v1/leagues/weekly", json=BODY, headers=headers)
    assert created.status_code == 201, created.text
    assert (await client.put("/v1/leagues/weekly", json={**BODY, "title": "W"}, headers=headers)).status_code == 200
    assert (await client.get("/v1/leagues/weekly", headers=headers)).json()["title"] == "W"


async def test_api_shows_a_members_cohort_with_zones(client, brand, db, clock):
    headers = brand.headers
    await client.put("/v1/leaderboards/pts", json=BOARD, headers=headers)
    await client.put("/v1/leagues/weekly", json=BODY, headers=headers)
    await score(db, brand, W47, anna=30, bruno=20, carla=10)
    before = (await client.get("/v1/leagues/weekly/members/anna", headers=headers)).json()
    assert (before["division"], before["cohort"], before["standings"]) == ("bronze", None, [])
    await run(db, T0, brand)
    live = (await client.get("/v1/leagues/weekly/members/carla", headers=headers)).json()
    assert (live["period"], live["final"], live["cohort"]) == (W47, False, 1)
    assert [(s["member"], s["rank"], s["score"], s["zone"], s["you"]) for s in live["standings"]] == [
        ("anna", 1, 30.0, "promotion", False),
        ("bruno", 2, 20.0, "stay", False),
        ("carla", 3, 10.0, "stay", True),  # bronze relegates no one
    ]
    link = await client.post("/v1/members/carla/portal-link", json={}, headers=headers)
    url = link.json()["url"]
    assert (await client.get(url[url.index("/portal/") :], follow_redirects=False)).status_code == 303
    page = await client.get("/portal/league?lang=it")
    assert page.status_code == 200, page.text
    assert "La tua lega" in page.text and "Divisione: Bronze" in page.text
    assert page.text.count('data-zone="promotion"') == 1 and page.text.count('data-zone="stay"') == 2
    assert "anna" not in page.text  # other members are shown by place only
    await run(db, WEEK_END, brand)
    final = (await client.get("/v1/leagues/weekly/members/anna", headers=headers)).json()
    assert (final["final"], final["division"], final["standings"][0]["zone"]) == (True, "bronze", "promotion")
    clock.set(WEEK_END + timedelta(hours=1))
    after = (await client.get("/v1/leagues/weekly/members/anna", headers=headers)).json()
    assert (after["period"], after["division"], after["cohort"]) == (W48, "silver", None)  # promoted; not seated yet
    exported = (await client.get("/v1/members/anna/export", headers=headers)).json()["sections"]["leagues"]
    assert [(p["league"], p["period"], p["division"], p["rank"], p["zone"]) for p in exported["placements"]] == [
        ("weekly", W47, "bronze", 1, "promotion")
    ]
    assert (await client.get("/v1/leagues/weekly/members/nobody", headers=headers)).status_code == 404
    assert (await client.get("/v1/leagues/none/members/anna", headers=headers)).status_code == 404


async def test_program_document_carries_leagues(client, brand):
    headers = brand.headers
    document = {"leaderboards": [BOARD], "leagues": [BODY]}
    response = await client.put("/v1/program", json=document, headers=headers)
    assert response.status_code == 200, response.text
    assert (await client.get("/v1/program", headers=headers)).json()["leagues"][0]["key"] == "weekly"
    broken = {"leagues": [{**BODY, "divisions": [BODY["divisions"][0], BODY["divisions"][0]]}]}
    response = await client.put("/v1/program", json=broken, headers=headers)
    assert response.status_code == 422 and response.json()["field"] == "$.leagues[0].divisions"
