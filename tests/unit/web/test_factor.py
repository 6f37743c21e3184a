"""Multipliers are shown as written, in the page's language."""

from __future__ import annotations


def test_multipliers_are_shown_as_written() -> None:
    from web.i18n.translator import Translator

    assert [Translator("it").factor(v) for v in (1.25, 1.5, 2)] == ["1,25", "1,5", "2"]
    assert Translator("en").factor(1.25) == "1.25"
