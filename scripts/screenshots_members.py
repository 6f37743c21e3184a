"""Regenerate the screenshots of tiers, offers, leagues, notifications, wallet and the segment/offer console.

Like ``scripts/screenshots.py`` (the demo brand on a free port, Debian's headless Chromium through Playwright)::

    .venv/bin/python scripts/screenshots_members.py    # writes docs/screenshots/portal-{tier,offers,...}.png
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from screenshots import ADMIN_EMAIL, ADMIN_PASSWORD, api, prepare  # noqa: E402 (the paths go first)

from tests.browser.servers import CHROMIUM, CHROMIUM_ARGS, questline_server  # noqa: E402

PORTAL_PAGES = ("tier", "offers", "league", "notifications")
CONSOLE_PAGES = ("segments", "offers", "notifications", "tiers")


def shoot(out: Path) -> None:
    """Take the screenshots into ``out``: ``portal-<page>.png`` and ``console-<page>.png``."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        questline_server(Path(tmp), secret="screenshots-secret-value") as (url, database),
    ):
        prepare(database, "http://127.0.0.1:1")
        portal = api(url, "/v1/members/m-giulia/portal-link", {})
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            desktop = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
            page = desktop.new_page()
            page.goto(str(portal["url"]))  # type: ignore[index]
            for name in PORTAL_PAGES:
                page.goto(f"{url}/portal/{name}")
                page.screenshot(path=out / f"portal-{name}.png", full_page=True)
            page.goto(f"{url}/console/login")
            page.fill("#f-email", ADMIN_EMAIL)
            page.fill("#f-password", ADMIN_PASSWORD)
            page.click("form.form button[type=submit]")
            page.wait_for_url(f"{url}/console")
            for name in CONSOLE_PAGES:
                page.goto(f"{url}/console/{name}")
                page.screenshot(path=out / f"console-{name}.png", full_page=True)
            browser.close()
    print(f"screenshots written to {out}")


if __name__ == "__main__":
    shoot(ROOT / "docs" / "screenshots")
