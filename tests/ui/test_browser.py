"""End to end: `shieldkit ui` headless on a free port, loaded in Debian's headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
pytestmark = pytest.mark.browser


@pytest.fixture
def server(tmp_path, start_ui):
    with start_ui(tmp_path / "ui.log", "--headless", "--model", "tiny-random") as (url, _):
        yield url


def test_heatmap_and_attention_render_in_chromium(server, browser, wait_idle, attention_chart):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.goto(server, wait_until="domcontentloaded", timeout=180_000)
    page.wait_for_selector(".sk-token", timeout=180_000)
    tokens = page.locator(".sk-text .sk-token")
    assert tokens.count() > 5
    coloured = [tokens.nth(i).evaluate("e => getComputedStyle(e).backgroundColor") for i in range(tokens.count())]
    assert sum(c not in ("rgba(0, 0, 0, 0)", "transparent") for c in coloured) > 3
    assert "raised" in page.locator(".sk-legend").first.inner_text()
    assert page.locator(".sk-target").count() > 0  # the explained span is marked
    assert page.get_by_text("Deploy", exact=True).count() == 0  # item 11: no Deploy button offline
    bars = page.locator("[data-testid='stVegaLiteChart'] > svg, [data-testid='stVegaLiteChart'] > canvas").first
    bars.wait_for(timeout=60_000)  # the segment scores as bars
    assert bars.bounding_box()["height"] > 50
    wait_idle(page)
    page.screenshot(path=str(ARTIFACTS / "ui-continuation.png"), full_page=True)

    with page.expect_download(timeout=30_000) as download:  # built on click; the app does not rerun
        page.get_by_role("button", name="Download JSON").first.click()
    assert download.value.suggested_filename.endswith(".json")
    assert page.locator("[data-testid='stStatusWidget']").count() == 0

    page.get_by_role("tab", name="Attention").click()
    chart = page.locator(attention_chart).first
    chart.wait_for(timeout=120_000)
    assert chart.bounding_box()["height"] > 100
    # The Continuation tab's elements go when the rerun ends, which can be after the chart draws.
    expect(page.locator(".sk-token")).to_have_count(0, timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "ui-attention.png"), full_page=True)
