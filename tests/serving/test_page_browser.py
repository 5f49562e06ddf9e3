"""The marketer page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Loads the page from a real server, signs in, applies filters, downloads the CSV and checks that it
equals the API's `/export` for the same filters; a key without the marketer role sees no customers.
A screenshot is saved for a human to look at (tests/serving/artifacts or $CLV_SCREENSHOT_DIR).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from .conftest import APP, MARKETER, running_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without these, Chromium reaches for Google's hosts at start-up, which a closed network refuses.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: `apt-get install chromium` (.ci/run does this)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


def key_of(headers: dict) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


@pytest.mark.slow
def test_filtered_download_equals_the_api_export(trained, browser, tmp_path):
    with running_server(trained) as url:
        page = browser.new_page(accept_downloads=True)
        # The page runs under the service's Content-Security-Policy; anything it blocks is logged here.
        blocked = []
        page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(f"{url}/ui")
        # Before signing in the page shows no customer data.
        assert page.locator("#content").is_hidden()
        page.fill("#key", key_of(MARKETER))
        page.click("#sign-in-form button")
        page.wait_for_selector("#segments tbody tr")
        # Locator waits, not wait_for_function: evaluating a string is what the policy forbids.
        expect(page.locator("#list-status")).to_contain_text("customers")
        assert "Tested on what customers really spent" in page.text_content("#quality")
        rules = page.text_content("#segment-rules")
        assert "At risk: churn risk at or above 50%" in rules and "[targeting]" in rules
        assert page.locator("#histogram rect.bar").count() > 0
        assert "Textbook formula" in page.text_content("#textbook")

        page.select_option("#f-segment", "nurture")
        page.fill("#f-churn-max", "0.9")
        page.fill("#f-top", "25%")
        page.click("#apply")
        expect(page.locator("#download")).to_be_enabled()
        with page.expect_download() as download_info:
            page.click("#download")
        downloaded = Path(download_info.value.path()).read_text()

        api = httpx.post(
            f"{url}/export", json={"segment": ["nurture"], "churn_max": 0.9, "top": "25%"}, headers=MARKETER
        )
        assert api.status_code == 200
        assert downloaded == api.text
        rows = downloaded.strip().splitlines()
        assert len(rows) > 1 and all(",nurture," in line for line in rows[1:])
        shown = page.locator("#top-list tbody tr").count()
        assert shown == min(len(rows) - 1, 200)

        screenshots = Path(os.environ.get("CLV_SCREENSHOT_DIR", Path(__file__).with_name("artifacts")))
        screenshots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshots / "marketer_page.png"), full_page=True)
        assert (screenshots / "marketer_page.png").stat().st_size > 10_000

        # An app key may predict but not see lists: the page refuses it and shows nothing.
        other = browser.new_page()
        other.goto(f"{url}/ui")
        other.fill("#key", key_of(APP))
        other.click("#sign-in-form button")
        expect(other.locator("#sign-in-error")).not_to_be_empty()
        assert "marketer role" in other.text_content("#sign-in-error")
        assert other.locator("#content").is_hidden()
        assert not blocked, blocked
