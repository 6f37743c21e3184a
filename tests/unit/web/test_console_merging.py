"""Console edits keep the other locales of a text and a challenge's prerequisites (which the forms do not show)."""

from __future__ import annotations

import pytest

from web.pages.console.merging import keep_unshown

STORED = {
    "key": "lover",
    "title": {"en": "Coffee lover", "it": "Amante del caffè"},
    "description": "Plain",
    "requires": {"challenges": ["starter"]},
}


@pytest.mark.parametrize(
    ("edited", "expected"),
    [
        (
            {"key": "lover", "title": "Coffee fan", "description": "New"},
            {
                "key": "lover",
                "title": {"en": "Coffee fan", "it": "Amante del caffè"},
                "description": "New",
                "requires": {"challenges": ["starter"]},
            },
        ),
        (
            {"key": "lover", "title": "", "requires": {"tiers": ["gold"]}},
            {"key": "lover", "title": "", "requires": {"tiers": ["gold"]}},  # an empty title is refused by validation
        ),
    ],
)
def test_the_form_text_becomes_the_default_locales(edited, expected):
    assert keep_unshown(edited, STORED) == expected


def test_a_new_definition_is_taken_as_written():
    assert keep_unshown({"key": "new", "title": "New"}, None) == {"key": "new", "title": "New"}
