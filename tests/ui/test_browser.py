"""End to end: `shieldkit ui` headless on a free port, loaded in Debian's headless Chromium."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
pytestmark = pytest.mark.browser


@pytest.fixture
def server(tmp_path, start_ui):
    with start_ui(tmp_path / "ui.log", "--headless", "--model", "tiny-random") as (url, _):
        yield url


def test_heatmap_and_attention_render_in_chromium(server):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.goto(server, wait_until="domcontentloaded")
            page.wait_for_selector(".sk-token", timeout=180_000)
            tokens = page.locator(".sk-text .sk-token")
            assert tokens.count() > 5
            coloured = [tokens.nth(i).evaluate("e => getComputedStyle(e).backgroundColor") for i in range(tokens.count())]
            assert sum(c not in ("rgba(0, 0, 0, 0)", "transparent") for c in coloured) > 3
            assert "raised" in page.locator(".sk-legend").first.inner_text()
            assert page.locator(".sk-target").count() > 0  # the explained span is marked
            page.screenshot(path=str(ARTIFACTS / "ui-continuation.png"), full_page=True)

            page.get_by_role("tab", name="Attention").click()
            chart = page.locator("[data-testid='stVegaLiteChart']").first
            chart.locator("canvas, svg").first.wait_for(timeout=120_000)
            assert chart.bounding_box()["height"] > 100
            page.screenshot(path=str(ARTIFACTS / "ui-attention.png"), full_page=True)
        finally:
            browser.close()
