"""Quests and brand content per locale in a real browser: the Italian portal shows the Italian names, a
locked challenge says what opens it, and an N-of-M challenge shows "2 of 3 tasks"."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from tests.browser.test_accessibility import (  # the axe fixtures and helpers
    audit,
    audited,  # noqa: F401
    axe_source,  # noqa: F401
)

pytestmark = pytest.mark.browser


def _event(member: str, n: int, kind: str) -> dict[str, object]:
    return {"id": f"{member}-{kind}-{n}", "member": member, "type": kind, "occurred_at": datetime.now(UTC).isoformat()}


def _quests(live_server, suffix: str) -> tuple[str, str]:
    starter, pick = f"starter-{suffix}", f"pick-{suffix}"
    live_server.add_to_program(
        campaigns=[{"key": f"quests-{suffix}", "title": {"en": "Coffee quests", "it": "Missioni del caffè"}}],
        challenges=[
            {
                "key": starter,
                "campaign": f"quests-{suffix}",
                "title": {"en": "Coffee lover", "it": "Amante del caffè"},
                "description": {"en": "Two coffees.", "it": "Due caffè."},
                "rule": {"type": "count", "event_type": f"coffee_{suffix}", "target": 2},
            },
            {
                "key": pick,
                "campaign": f"quests-{suffix}",
                "title": {"en": "Taster", "it": "Assaggiatore"},
                "rule": {
                    "type": "all_of",
                    "required": 3,
                    "steps": [{"event_type": f"{t}_{suffix}"} for t in ("espresso", "latte", "mocha", "cortado")],
                },
                "requires": {"challenges": [starter]},
            },
        ],
    )
    return starter, pick


def test_the_italian_portal_shows_italian_names_locks_and_n_of_m(live_server, page):
    suffix = uuid.uuid4().hex[:6]
    starter, pick = _quests(live_server, suffix)
    member = f"m-quest-{suffix}"
    live_server.member(member, name="Giulia", locale="it")
    live_server.events(_event(member, 1, f"coffee_{suffix}"))

    page.goto(live_server.portal_link(member, page="challenges"))
    assert page.locator("html").get_attribute("lang") == "it"
    assert page.locator(f"#ch-{starter}-title").inner_text() == "Amante del caffè"
    assert page.locator(f"#ch-{pick}-title").inner_text() == "Assaggiatore"
    assert page.locator(f"#locks-{pick}").inner_text() == "Prima completa “Amante del caffè”"

    live_server.events(_event(member, 2, f"coffee_{suffix}"), _event(member, 3, f"espresso_{suffix}"))
    live_server.events(_event(member, 4, f"latte_{suffix}"))
    page.reload()
    assert page.locator(f"#locks-{pick}").count() == 0
    assert page.locator(f"#tasks-{pick}").inner_text() == "2 di 3 attività"

    page.goto(f"{live_server.url}/portal/challenges?lang=en")
    assert page.locator(f"#ch-{starter}-title").inner_text() == "Coffee lover"
    assert page.locator(f"#tasks-{pick}").inner_text() == "2 of 3 tasks"


def test_locked_and_n_of_m_cards_have_no_serious_violations(live_server, audited, axe_source):  # noqa: F811
    suffix = uuid.uuid4().hex[:6]
    _quests(live_server, suffix)
    member = f"m-quest-axe-{suffix}"
    live_server.member(member, name="Marco", locale="it")
    audited.goto(live_server.portal_link(member))
    urls = [f"{live_server.url}/portal/challenges?lang={lang}" for lang in ("it", "en")]
    assert audit(audited, axe_source, urls) == {}
