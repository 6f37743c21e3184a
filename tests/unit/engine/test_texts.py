"""Brand texts per locale: the fallback order, and each domain's definitions in Italian and English."""

from __future__ import annotations

import msgspec
import pytest

from badges.models import BadgeSpec, badge_to_spec, build_badge
from engine.errors import DefinitionError
from engine.texts import check_text, pick, text_in, translations
from leaderboards.config import board_to_spec, build_board
from leaderboards.models import BoardSpec
from tests.unit.challenges.helpers import challenge
from tiers.models import TierSpec

NAMES = {"en": "Coffee lover", "it": "Amante del caffè", "pt-BR": "Amante de café"}


@pytest.mark.parametrize(
    ("value", "locale", "expected"),
    [
        (NAMES, "it", ("Amante del caffè", "it")),
        (NAMES, "it-IT", ("Amante del caffè", "it")),
        (NAMES, "it_IT", ("Amante del caffè", "it")),
        (NAMES, "pt-BR", ("Amante de café", "pt-BR")),
        (NAMES, "fr", ("Coffee lover", "en")),  # the default locale
        (NAMES, None, ("Coffee lover", "en")),
        ({"it": "Solo italiano"}, "en", ("Solo italiano", "it")),  # no default: the first given
        ({"it": "", "de": "Kaffee"}, "it", ("Kaffee", "de")),  # an empty text is no text
        ("Coffee lover", "it", ("Coffee lover", None)),  # a plain string is shown as written
        (None, "it", ("", None)),
    ],
)
def test_the_text_for_a_locale_falls_back_to_the_language_then_the_default(value, locale, expected):
    assert pick(value, locale) == expected
    assert text_in(value, locale) == expected[0]


@pytest.mark.parametrize("value", [{}, {"it": ""}, ""])
def test_a_required_text_must_have_some_text(value):
    with pytest.raises(DefinitionError) as caught:
        check_text(value, field="$.name", required=True)
    assert caught.value.field == "$.name"


def test_translations_keep_only_the_per_locale_fields_and_stay_hashable():
    kept = translations(name=NAMES, description="plain")
    assert kept.texts("name") == NAMES
    assert kept.texts("description") == {}
    assert kept.given("description", "plain") == "plain"
    assert kept.get("name", "it", "x") == ("Amante del caffè", "it")
    assert kept.get("description", "it", "plain") == ("plain", None)
    assert hash(kept) == hash(translations(name=dict(NAMES), description="other"))


def test_a_challenge_and_its_campaign_per_locale():
    made = challenge(
        {"type": "first", "event_type": "visit"},
        campaign={"title": {"en": "Coffee month", "it": "Mese del caffè"}},
        title=NAMES,
        description={"it": "Tre caffè."},
    )
    assert (made.title, made.description) == ("Coffee lover", "Tre caffè.")  # the default locale's, else the first
    assert made.texts.text("title", "it", made.title) == "Amante del caffè"
    assert made.campaign.texts.text("title", "it", made.campaign.title) == "Mese del caffè"
    assert challenge({"type": "first", "event_type": "visit"}, title="Plain").texts.fields == ()


@pytest.mark.parametrize(("locale", "name", "description"), [("it", "Critico", "Tre recensioni"), ("en", "Critic", "")])
def test_a_badge_per_locale_and_back(locale, name, description):
    spec = msgspec.convert(
        {"key": "critic", "name": {"en": "Critic", "it": "Critico"}, "description": {"it": "Tre recensioni"}}, BadgeSpec
    )
    badge = build_badge(spec)
    shown = badge.in_locale(locale)
    assert (shown.name, shown.description if locale == "it" else "") == (name, description)
    assert badge_to_spec(badge) == spec
    plain = msgspec.convert({"key": "star", "name": "Star"}, BadgeSpec)
    assert build_badge(plain).in_locale("it").name == "Star"
    assert badge_to_spec(build_badge(plain)) == plain


@pytest.mark.parametrize(
    ("locale", "title"), [("it", "Più caffè"), ("en", "Top coffee drinkers"), ("de", "Top coffee drinkers")]
)
def test_a_board_per_locale_and_back(locale, title):
    spec = msgspec.convert(
        {"key": "top", "title": {"en": "Top coffee drinkers", "it": "Più caffè"}, "metric": {"kind": "points"}},
        BoardSpec,
    )
    board = build_board(spec)
    assert board.in_locale(locale).title == title
    assert board_to_spec(board) == spec
    assert hash(board) == hash(build_board(spec))


@pytest.mark.parametrize(
    ("name", "locale", "label"),
    [
        ({"en": "Gold", "it": "Oro"}, "it", "Oro"),
        ({"en": "Gold", "it": "Oro"}, "en-GB", "Gold"),
        ("Gold", "it", "Gold"),
        ({}, "it", "gold"),
    ],
)
def test_a_tier_name_per_locale_or_plain(name, locale, label):
    assert msgspec.convert({"key": "gold", "name": name}, TierSpec).label(locale) == label
