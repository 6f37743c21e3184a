"""League rules without I/O: cohort filling, zones with ties, small cohorts, division moves, definitions."""

import pytest

from engine.errors import DefinitionError
from leagues.models import (
    Division,
    DivisionReward,
    LeagueSpec,
    check_spec,
    next_division,
    place_newcomers,
    reward_points,
    standings,
)


def zones(values, **kw):
    return {s.member_id: (s.rank, s.zone) for s in standings(values, **kw)}


def test_cohorts_fill_one_after_another_and_reopen_after_a_gap():
    sizes: dict[int, int] = {}
    assert place_newcomers(sizes, 7, 3) == [1, 1, 1, 2, 2, 2, 3]
    assert place_newcomers(sizes, 3, 3) == [3, 3, 4]


def test_ties_at_the_promotion_boundary_all_go_up():
    got = zones({1: 9, 2: 7, 3: 7, 4: 7, 5: 1}, promote=2, relegate=1, top=False, bottom=False)
    assert got == {
        1: (1, "promotion"),
        2: (2, "promotion"),
        3: (2, "promotion"),
        4: (2, "promotion"),
        5: (5, "relegation"),
    }


def test_a_tie_straddling_the_relegation_boundary_stays():
    got = zones({1: 9, 2: 8, 3: 3, 4: 3, 5: 3}, promote=1, relegate=2, top=False, bottom=False)
    assert [got[m][1] for m in (1, 2, 3, 4, 5)] == ["promotion", "stay", "stay", "stay", "stay"]
    got = zones({1: 9, 2: 8, 3: 3, 4: 2, 5: 2}, promote=1, relegate=2, top=False, bottom=False)
    assert [got[m][1] for m in (3, 4, 5)] == ["stay", "relegation", "relegation"]


def test_small_cohorts_promote_first_and_the_edges_have_one_zone():
    assert zones({1: 5, 2: 4}, promote=2, relegate=2, top=False, bottom=False) == {
        1: (1, "promotion"),
        2: (2, "promotion"),
    }
    assert zones({1: 5, 2: 4, 3: 1}, promote=1, relegate=1, top=True, bottom=False)[1] == (1, "stay")
    assert zones({1: 5, 2: 4, 3: 1}, promote=1, relegate=1, top=False, bottom=True)[3] == (3, "stay")


def test_moves_stay_within_the_divisions_and_rewards_sum_their_bands():
    names = ["bronze", "silver", "gold"]
    assert next_division(names, "gold", "promotion") == "gold"
    assert next_division(names, "bronze", "relegation") == "bronze"
    assert next_division(names, "silver", "promotion") == "gold"
    assert next_division(names, "gone", "stay") == "bronze"
    division = Division(
        key="d", title="D", rewards=[DivisionReward(to_rank=3, points=10), DivisionReward(to_rank=1, points=5)]
    )
    assert [reward_points(division, r) for r in (1, 2, 4)] == [15, 10, 0]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"promote": 3, "relegate": 3}, "$.promote"),
        ({"divisions": [Division(key="a", title="A"), Division(key="a", title="B")]}, "$.divisions"),
        (
            {
                "divisions": [Division(key="a", title="A", rewards=[DivisionReward(from_rank=3, to_rank=2, points=1)])]
                * 1
                + [Division(key="b", title="B")]
            },
            "$.divisions[0].rewards[0].from_rank",
        ),
    ],
)
def test_inconsistent_definitions_are_refused(changes, field):
    base = {"key": "l", "title": "L", "board": "b", "cohort_size": 5, "promote": 1, "relegate": 1}
    base["divisions"] = [Division(key="a", title="A"), Division(key="b", title="B")]
    with pytest.raises(DefinitionError) as caught:
        check_spec(LeagueSpec(**{**base, **changes}))
    assert caught.value.field == field
