"""Regenerate docs/screenshots/*.png: the member portal, the brand console and the widgets.

Starts Questline on a free port with the demo brand (SQLite in a temporary directory, in-process Redis),
creates a console admin, serves a host page on a second origin for the widget, and photographs each page
with Debian's headless Chromium through Playwright::

    .venv/bin/python scripts/screenshots.py            # writes docs/screenshots/
    .venv/bin/python scripts/screenshots.py --out /tmp/shots

Needs ``/usr/bin/chromium`` and the ``playwright`` package (never ``playwright install``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.servers import (  # noqa: E402 (the repository root goes on the path first)
    CHROMIUM,
    CHROMIUM_ARGS,
    PUBLISHABLE_KEY,
    SECRET_KEY,
    add_console_admin,
    allow_origin,
    questline_server,
    static_server,
)

ADMIN_EMAIL = "ada@demo-coffee.example"
ADMIN_PASSWORD = "screenshots-only-password"


def api(url: str, path: str, body: object | None = None) -> object:
    """Call the JSON API with the demo's secret key."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url + path,
        data=data,
        method="POST" if data is not None else "GET",
        headers={"Authorization": f"Bearer {SECRET_KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def prepare(database: Path, host_origin: str) -> None:
    """Allow the host page's origin to embed the widgets and create a console admin."""
    allow_origin(database, host_origin)
    add_console_admin(database, email=ADMIN_EMAIL, password=ADMIN_PASSWORD, name="Ada Lovelace")


def host_page(directory: Path, url: str, token: str) -> None:
    """The page of "another site" that embeds the widgets with the script tag."""
    (directory / "index.html").write_text(
        f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Demo Coffee — rewards</title>
<style>body{{font:16px/1.5 Georgia,serif;background:#f3ede4;color:#2b2118;margin:0}}
header{{background:#2b2118;color:#f3ede4;padding:18px 32px;font-size:1.4rem}}
main{{display:grid;grid-template-columns:1fr 1fr;gap:28px;padding:28px 32px;max-width:1100px}}
h2{{margin:0 0 10px}}</style></head><body><header>☕ Demo Coffee · Rewards club</header><main>
<section><h2>This week's top customers</h2>
<script src="{url}/static/widget.js" data-board="weekly-points" data-key="{PUBLISHABLE_KEY}" data-theme="dark"
 data-accent="#e0803a" data-rows="8" data-member="{token}" data-lang="it" async></script></section>
<section><h2>Your badges</h2>
<script src="{url}/static/widget.js" data-widget="badges" data-key="{PUBLISHABLE_KEY}" data-member="{token}"
 data-accent="#e0803a" data-lang="it" async></script></section></main></body></html>""",
        encoding="utf-8",
    )


def shoot(out: Path) -> None:
    """Take every screenshot into ``out``."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        questline_server(Path(tmp), secret="screenshots-secret-value") as (url, database),
    ):
        site = Path(tmp) / "site"
        site.mkdir()
        with static_server(site) as host:
            prepare(database, host)
            portal = api(url, "/v1/members/m-giulia/portal-link", {})
            token = api(url, "/v1/members/m-giulia/widget-token", {})
            host_page(site, url, str(token["token"]))  # type: ignore[index]
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                desktop = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
                page = desktop.new_page()
                page.goto(str(portal["url"]))  # type: ignore[index]
                page.screenshot(path=out / "portal-home.png", full_page=True)
                page.goto(f"{url}/portal/challenges")
                page.screenshot(path=out / "portal-challenges.png", full_page=True)
                page.goto(f"{url}/portal/badges")
                page.screenshot(path=out / "portal-badges.png", full_page=True)
                page.goto(f"{url}/portal/leaderboards")
                page.screenshot(path=out / "portal-leaderboards.png", full_page=True)

                phone = browser.new_context(
                    viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
                )
                mobile = phone.new_page()
                english = api(url, "/v1/members/m-emma/portal-link", {"page": "challenges"})
                mobile.goto(str(english["url"]))  # type: ignore[index]
                mobile.screenshot(path=out / "portal-phone.png")

                page.goto(f"{url}/console/login")
                page.fill("#f-email", ADMIN_EMAIL)
                page.fill("#f-password", ADMIN_PASSWORD)
                page.click("form.form button[type=submit]")
                page.wait_for_url(f"{url}/console")
                page.screenshot(path=out / "console-dashboard.png", full_page=True)
                page.goto(f"{url}/console/campaigns/new")
                page.fill("#f-c_title", "Autumn reviews")
                page.fill("#f-c_key", "autumn-reviews")
                page.fill("#f-ch_title", "Write 3 reviews with 4+ stars")
                page.fill("#f-ch_key", "autumn-3-reviews")
                page.fill("#f-ch_event_type", "review")
                page.fill("#f-ch_target", "three")
                page.fill("#f-ch_filter", "{field: properties.stars, gte: 4}")
                page.click("#campaign-form button[type=submit]")
                page.locator("#e-ch_target").wait_for()
                page.screenshot(path=out / "console-campaign-error.png", full_page=True)
                page.goto(f"{url}/console/program")
                page.click("#simulate")
                page.locator("#simulation").wait_for()
                page.screenshot(path=out / "console-program.png", full_page=True)
                page.goto(f"{url}/console/members/m-giulia")
                page.screenshot(path=out / "console-member.png", full_page=True)
                page.goto(f"{url}/console/badges")
                page.screenshot(path=out / "console-badges.png", full_page=True)
                page.goto(f"{url}/console/widgets")
                page.frame_locator("iframe").first.locator("#rows li").first.wait_for()
                page.screenshot(path=out / "console-widgets.png", full_page=True)

                page.goto(host + "/index.html")
                page.frame_locator("iframe.questline-widget").first.locator("#rows li").first.wait_for()
                page.wait_for_timeout(800)
                page.screenshot(path=out / "widget-embedded.png", full_page=True)
                browser.close()
    print(f"screenshots written to {out}")


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    shoot(args.out)


if __name__ == "__main__":
    main()
