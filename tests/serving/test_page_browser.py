"""The marketer page in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Loads the page from a real server, signs in, applies filters, downloads the CSV and checks that it
equals the API's `/export` for the same filters; a key without the marketer role sees no customers.
With the shop's data and the demo's spend file configured: a campaign list downloaded from the page
equals `POST /campaigns`' list, and the Acquisition view charts CLV:CAC per channel as `/economics` has it.
Screenshots are saved for a human to look at (tests/serving/artifacts or $CLV_SCREENSHOT_DIR).
"""

from __future__ import annotations

import csv
import io
import os
import re
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


def screenshot_dir() -> Path:
    folder = Path(os.environ.get("CLV_SCREENSHOT_DIR", Path(__file__).with_name("artifacts")))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def signed_in(browser, url: str, blocked: list):
    """A page signed in with the marketer key; what the Content-Security-Policy blocks goes to `blocked`."""
    page = browser.new_page(accept_downloads=True)
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{url}/ui")
    page.fill("#key", key_of(MARKETER))
    page.click("#sign-in-form button")
    page.wait_for_selector("#segments tbody tr")
    return page


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
        # The table shows numbers as a marketer reads them; the download keeps full precision.
        header = page.locator("#top-list thead td").all_text_contents()
        cells = page.locator("#top-list tbody tr").first.locator("td").all_text_contents()
        first = dict(zip(header, cells, strict=True))
        exact = next(csv.DictReader(io.StringIO(downloaded)))
        assert re.fullmatch(r"(<1|>99|\d{1,3})%", first["churn_prob"]), first
        assert not re.search(r"\.\d{3}", first["predicted_clv"]) and re.search(
            r"\.\d{3}", exact["predicted_clv"]
        )
        assert first["customer_id"] == exact["customer_id"]

        screenshots = screenshot_dir()
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


@pytest.mark.slow
def test_campaign_downloads_equal_the_api_and_acquisition_charts_clv_to_cac(trained, browser, tmp_path):
    shop = trained.shop
    # The demo shop's own spend file (demo/shop.py) without referral's rows: a channel of unknown cost.
    spend = tmp_path / "spend.csv"
    spend.write_text(
        "".join(line for line in (shop / "spend.csv").open() if not line.startswith("referral,"))
    )
    configured = {
        "CLV_DATA__TRANSACTIONS": str(shop / "transactions.parquet"),
        "CLV_DATA__EVENTS": str(shop / "events.parquet"),
        "CLV_DATA__CUSTOMERS": str(shop / "customers.parquet"),
        "CLV_ECONOMICS__SPEND": str(spend),
    }
    with running_server(trained, **configured) as url:
        blocked: list[str] = []
        page = signed_in(browser, url, blocked)

        # Campaigns: one row per list the API makes, with its count; a download is the API's list.
        summary = httpx.post(f"{url}/campaigns", json={}, headers=MARKETER).json()["campaigns"]
        expect(page.locator("#campaigns tbody tr")).to_have_count(len(summary))
        shown = {
            cells[0]: cells[1]
            for cells in (row.split("\t") for row in page.locator("#campaigns tbody tr").all_inner_texts())
        }
        assert shown == {name: f"{c['rows']:,}" for name, c in summary.items()}
        for name in ("welcome", "win_back"):  # one from the log's dates, one from the scores alone
            with page.expect_download() as download_info:
                page.click(f"#campaigns button[data-campaign={name}]")
            assert download_info.value.suggested_filename == f"clv-{name}.csv"
            downloaded = Path(download_info.value.path()).read_text()
            api = httpx.post(f"{url}/campaigns", json={"campaign": name}, headers=MARKETER)
            assert api.status_code == 200 and downloaded == api.text
            assert len(downloaded.splitlines()) == summary[name]["rows"] + 1

        # Acquisition: CLV:CAC per channel from /economics with the demo's spend file.
        economics = httpx.get(f"{url}/economics", headers=MARKETER).json()
        channels = economics["by_channel"]
        expect(page.locator("#channels tbody tr")).to_have_count(len(channels))
        paid = [c for c in channels if c["clv_to_cac"] is not None]
        assert {c["acquisition_channel"] for c in paid} >= {"paid_search", "paid_social", "affiliate"}
        assert page.locator("#clv-cac rect.ratio").count() == len(paid)
        chart = page.text_content("#clv-cac")
        for channel in channels:
            assert channel["acquisition_channel"] in chart
        assert "no spend" in chart  # organic: nothing spent, no ratio
        assert "spend unknown" in chart  # referral: not in the spend file
        table = {
            cells[0]: (cells[2], cells[5])
            for cells in (row.split("\t") for row in page.locator("#channels tbody tr").all_inner_texts())
        }
        assert table["referral"] == ("unknown", "unknown"), table
        assert table["organic"] == ("0", "no spend"), table
        assert {c: table[c][1] for c in table if c not in ("referral", "organic")} == {
            c["acquisition_channel"]: f"{c['clv_to_cac']:.2f}" for c in paid
        }
        assert any("'referral' is not in the spend file" in note for note in economics["notes"])
        assert "'referral' is not in the spend file" in page.text_content("#economics-notes")
        assert page.locator("#cohort-curves polyline.curve").count() == len(channels)

        # The retention what-if, customer by customer, follows the form and agrees with the API.
        page.fill("#retention-up", "10")
        expect(page.locator("#retention-what-if")).to_contain_text("Retention up 10 points")
        lifted = httpx.get(f"{url}/economics?retention_lift=10", headers=MARKETER).json()["retention_what_if"]
        assert f"→ {lifted['value_after']:,.0f}" in page.text_content("#retention-what-if")
        beside = page.locator("#what-if-table tbody tr").nth(0).locator("td").nth(3)
        assert beside.inner_text() == f"{lifted['value_before']:,.0f}"  # beside the textbook's column

        page.locator("#acquisition-view").screenshot(path=str(screenshot_dir() / "acquisition_view.png"))
        assert not blocked, blocked
