"""The debugger's speed bars (issue 12, item 7), measured in Chromium against the embedded Gemma 3 270M, from the
input change to the rendered result. The numbers are printed and written to test-artifacts/ui-speed.json, and
recorded in BENCHMARKS.md; the bars themselves are not asserted (a shared machine must not fail a test run).

On an idle machine: ``flock /tmp/shieldkit-cpu.lock env HF_HUB_OFFLINE=1 .venv/bin/pytest -s
tests/ui/test_browser_speed.py``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.real_model]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PROMPT = "The capital of Italy is a city called"
PROMPT_20 = "My friend grew up in a small village near Kyoto, and after years abroad she still speaks"
BARS = {
    "new prompt → heatmap (gradient × input)": 3.0,
    "integrated gradients, 16 steps, 20-token prompt": 8.0,
    "… and the app idle": 8.0,
    "switch tab → Attention": 1.0,
    "switch tab → back to Continuation": 1.0,
    "download JSON": 0.5,
}


@pytest.fixture
def real_server(tmp_path, start_ui):
    env = {"SHIELDKIT_THREADS": os.environ.get("SHIELDKIT_THREADS", "2")}
    with start_ui(tmp_path / "ui.log", "--headless", env=env, timeout=300) as (url, _):
        yield url


def _commit(page, label: str, text: str) -> float:
    """Type ``text`` into the text area ``label`` and commit it (Ctrl+Enter); returns the moment of the commit."""
    box = page.get_by_label(label, exact=True)
    box.fill(text)
    started = time.perf_counter()
    box.press("Control+Enter")
    return started


def _heatmap_shows(page, text: str, timeout: float = 120_000) -> None:
    page.wait_for_function("t => [...document.querySelectorAll('.sk-text')].some(e => e.textContent.includes(t))",
                           arg=text, timeout=timeout)


def _choose(page, label: str, option: str) -> float:
    page.get_by_label(label, exact=True).click()
    started = time.perf_counter()
    page.get_by_role("option", name=option, exact=True).click()
    return started


def test_speed_bars(real_server, browser, wait_idle, pool_file, attention_chart):
    measured: dict[str, float] = {}
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.goto(real_server, wait_until="domcontentloaded", timeout=180_000)
    page.wait_for_selector(".sk-token", timeout=300_000)  # the model loads, generates and explains once
    wait_idle(page)

    started = _commit(page, "Prompt", PROMPT)
    _heatmap_shows(page, PROMPT)
    measured["new prompt → heatmap (gradient × input)"] = time.perf_counter() - started
    wait_idle(page)

    _commit(page, "Prompt", PROMPT_20)
    _heatmap_shows(page, PROMPT_20)
    wait_idle(page)
    page.get_by_text("Next token after the prompt", exact=True).click()
    page.get_by_text("Target: log p(", exact=False).first.wait_for(timeout=120_000)
    wait_idle(page)
    started = _choose(page, "Saliency method", "Integrated gradients")
    page.get_by_text("Integrated gradients ·", exact=False).first.wait_for(timeout=120_000)
    measured["integrated gradients, 16 steps, 20-token prompt"] = time.perf_counter() - started
    wait_idle(page)
    measured["… and the app idle"] = time.perf_counter() - started
    tokens = page.evaluate("() => document.querySelectorAll('.sk-text .sk-token:not(.sk-control)').length")

    started = time.perf_counter()
    with page.expect_download(timeout=30_000):
        page.get_by_role("button", name="Download JSON").first.click()
    measured["download JSON"] = time.perf_counter() - started
    assert page.locator("[data-testid='stStatusWidget']").count() == 0  # the download did not rerun the app

    started = time.perf_counter()
    page.get_by_role("tab", name="Attention").click()
    page.locator(attention_chart).first.wait_for(timeout=60_000)
    measured["switch tab → Attention"] = time.perf_counter() - started
    wait_idle(page)
    started = time.perf_counter()
    page.get_by_role("tab", name="Continuation").click()
    page.wait_for_selector(".sk-token", timeout=60_000)
    measured["switch tab → back to Continuation"] = time.perf_counter() - started
    wait_idle(page)

    # the Data tab on a default policy: score a file, sort, click a row to explain it
    page.get_by_role("tab", name="Data").click()
    page.get_by_label("Policy", exact=True).wait_for(timeout=60_000)
    _choose(page, "Policy", "violence")
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(pool_file))
    page.get_by_text("flagged at threshold", exact=False).first.wait_for(timeout=120_000)
    wait_idle(page)
    page.screenshot(path=str(ARTIFACTS / "ui-data.png"), full_page=True)

    load = os.getloadavg()[0]
    report = {"measured_seconds": {k: round(v, 2) for k, v in measured.items()}, "bars_seconds": BARS,
              "ig_text_tokens": tokens, "load_average_1min_after": round(load, 2)}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "ui-speed.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    print("\nUI speed bars (embedded Gemma 3 270M, Chromium):")
    for name, seconds in measured.items():
        print(f"  {name:<50} {seconds:6.2f} s   bar {BARS[name]:.1f} s   {'ok' if seconds <= BARS[name] else 'OVER'}")
    print(f"  (integrated gradients explained {tokens} text tokens; 1-minute load average after: {load:.2f})")


@pytest.fixture
def pool_file(tmp_path):
    path = tmp_path / "pool.csv"
    path.write_text("text,label\nI'm going to destroy you at chess tomorrow.,0\nI will find you and hurt you.,1\n"
                    "Lovely weather today.,\nHow do I kill a Python process?,\n", encoding="utf-8")
    return path
