import pytest

from engine.errors import DefinitionError
from engine.predicates import matches, parse_predicate, predicate_to_data

PROPS = {"stars": 4, "store": "milano", "tags": ["coffee", "cake"], "nested": {"size": "L"}, "note": None}
MEMBER = {"tier": "gold", "region": "north", "locale": "it"}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"field": "properties.stars", "eq": 4}, True),
        ({"field": "properties.stars", "ne": 4}, False),
        ({"field": "properties.stars", "gt": 3}, True),
        ({"field": "properties.stars", "gt": 4}, False),
        ({"field": "properties.stars", "gte": 4}, True),
        ({"field": "properties.stars", "lt": 4}, False),
        ({"field": "properties.stars", "lte": 4}, True),
        ({"field": "properties.store", "in": ["milano", "roma"]}, True),
        ({"field": "properties.store", "not_in": ["milano"]}, False),
        ({"field": "properties.tags", "contains": "cake"}, True),
        ({"field": "properties.store", "contains": "lan"}, True),
        ({"field": "properties.missing", "exists": False}, True),
        ({"field": "properties.note", "exists": True}, False),
        ({"field": "properties.nested.size", "eq": "L"}, True),
        ({"field": "member.tier", "in": ["gold", "silver"]}, True),
        ({"field": "type", "eq": "review"}, True),
        ({"field": "properties.missing", "ne": 1}, True),
        ({"field": "properties.missing", "eq": 1}, False),
        ({"field": "properties.store", "gt": 3}, False),  # type mismatch never matches, never raises
        ({"all": [{"field": "properties.stars", "gte": 4}, {"field": "member.region", "eq": "north"}]}, True),
        ({"all": [{"field": "properties.stars", "gte": 5}, {"field": "member.region", "eq": "north"}]}, False),
        ({"any": [{"field": "properties.stars", "gte": 5}, {"field": "member.region", "eq": "north"}]}, True),
        ({"not": {"field": "member.tier", "eq": "gold"}}, False),
    ],
)
def test_matches(data, expected):
    predicate = parse_predicate(data)
    assert matches(predicate, event_type="review", properties=PROPS, member=MEMBER) is expected
    assert parse_predicate(predicate_to_data(predicate)) == predicate


def test_none_matches_everything():
    assert matches(None, properties={}, member={})


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ("stars", "filter"),
        ({"field": "stars", "eq": 1}, "filter.field"),
        ({"field": "properties.stars", "equals": 1}, "filter.equals"),
        ({"field": "properties.stars", "eq": 1, "ne": 2}, "filter"),
        ({"field": "properties.stars", "in": "abc"}, "filter.in"),
        ({"field": "properties.stars", "gt": [1]}, "filter.gt"),
        ({"field": "properties.stars", "exists": "yes"}, "filter.exists"),
        ({"all": []}, "filter.all"),
        ({"all": [{"field": "properties.a", "eq": 1}, {"field": "nope", "eq": 1}]}, "filter.all[1].field"),
        ({"not": {"any": [{"field": "member.x", "lt": {}}]}}, "filter.not.any[0].lt"),
        ({"all": [{"field": "properties.a", "eq": 1}], "any": []}, "filter"),
    ],
)
def test_invalid_definitions_name_the_path(data, path):
    with pytest.raises(DefinitionError) as info:
        parse_predicate(data)
    assert info.value.field == path


def test_depth_is_limited():
    data: dict = {"field": "properties.a", "eq": 1}
    for _ in range(12):
        data = {"not": data}
    with pytest.raises(DefinitionError):
        parse_predicate(data)
