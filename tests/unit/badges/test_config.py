import pytest

from badges.config import parse_section
from engine.errors import DefinitionError


def test_parse_section_validates_every_badge():
    badges = parse_section(
        [
            {
                "key": "critic",
                "name": "Critic",
                "rule": {"event_type": "review"},
                "levels": [{"key": "bronze", "threshold": 1}],
            },
            {"key": "vip", "name": "VIP", "hidden": True},
        ],
        path="badges",
    )
    assert [(b.key, b.hidden, [lv.key for lv in b.levels]) for b in badges] == [
        ("critic", False, ["bronze"]),
        ("vip", True, []),
    ]
    assert parse_section(None, path="badges") == []


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"key": "a"}, "badges"),
        (["nope"], "badges[0]"),
        ([{"key": "a"}], "badges[0].name"),
        ([{"key": "a", "name": "A", "colour": "#fff"}], "badges[0].colour"),
        ([{"key": "A B", "name": "A"}], "badges[0].key"),
        ([{"key": "a", "name": "A", "levels": [{"key": "b", "threshold": 0}]}], "badges[0].levels[0].threshold"),
        (
            [{"key": "a", "name": "A", "rule": {"event_type": "r", "filter": {"field": "properties.x", "bad": 1}}}],
            "badges[0].rule.filter.bad",
        ),
        ([{"key": "a", "name": "A"}, {"key": "a", "name": "B"}], "badges[1].key"),
    ],
)
def test_parse_section_names_the_mistake(data, field):
    with pytest.raises(DefinitionError) as info:
        parse_section(data, path="badges")
    assert info.value.field == field
