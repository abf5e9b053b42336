"""The browser explorer in a real browser: `odsim viz` on a free port, driven with Playwright in Debian's Chromium.

Checks what a presenter relies on: the page renders fully from local assets (no request leaves the machine),
every control and chart is there, Step advances the month and redraws the charts, a slider change plus Reset
rebuilds the model with the new value, and the browser console stays free of errors. Saves a screenshot to
results/viz-browser.png. In CI (CI=true) it always runs; elsewhere it is skipped only when Chromium is missing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from sim.app import SLIDERS, scenario_files
from sim.figures.explorer_views import VIEWS
from viz_support import CHROMIUM, launch, printed_address, serve

RESULTS = Path(__file__).resolve().parents[1] / "results"
LOAD_TIMEOUT = 120_000  # ms; a cold start on a busy 2-core machine takes tens of seconds
STEP_TIMEOUT = 30_000


def _require_chromium():
    if CHROMIUM.exists():
        return
    message = (f"Chromium not found at {CHROMIUM}; `make test` installs Debian's chromium package "
               "(or set ODSIM_CHROMIUM)")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _month(page) -> str:
    return page.locator(".odsim-month").inner_text().strip()


def _chart_pixels(page) -> dict[str, bytes]:
    return {name: page.locator(f".odsim-chart-{name} img").screenshot() for name in VIEWS}


def _wait_for_text(page, selector: str, text: str, timeout: int = STEP_TIMEOUT) -> None:
    page.wait_for_function(
        "([sel, text]) => { const e = document.querySelector(sel); return e && e.innerText.trim() === text; }",
        arg=[selector, text], timeout=timeout)


def _wait_until_all_changed(page, before: dict[str, bytes], timeout_s: float = 30.0) -> dict[str, bytes]:
    """Charts arrive as separate images after the month text; poll until every one differs from `before`."""
    deadline = time.monotonic() + timeout_s
    while True:
        now = _chart_pixels(page)
        unchanged = [name for name in VIEWS if now[name] == before[name]]
        if not unchanged or time.monotonic() > deadline:
            assert not unchanged, f"charts did not change: {unchanged}"
            return now
        page.wait_for_timeout(300)


@pytest.mark.slow
def test_viz_in_browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with serve() as server, sync_playwright() as playwright:
        assert printed_address(server) == server.url, server.output
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1600, "height": 1200})
        console_errors, requests, failed = [], [], []
        page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda err: console_errors.append(str(err)))
        page.on("request", lambda req: requests.append(req.url))
        page.on("requestfailed", lambda req: failed.append(f"{req.url} ({req.failure})"))
        try:
            page.goto(server.url)
            _wait_for_text(page, ".odsim-month", "2023-01", timeout=LOAD_TIMEOUT)

            # Controls: Mesa's step / play / reset, the scenario picker and every slider.
            for name in ("Step", "Reset", "▶"):
                assert page.get_by_role("button", name=name, exact=True).count() == 1, name
            assert page.locator(".v-select").filter(has_text="Scenario").count() == 1
            labels = [label for label, _ in SLIDERS.values()] + ["Number of agents"]
            for label in labels:
                assert page.get_by_role("slider", name=label, exact=True).count() == 1, label
            assert page.get_by_role("slider", name="Seed", exact=False).count() == 1

            # Every chart is drawn (an image that loaded), and the current month is shown.
            for name in VIEWS:
                image = page.locator(f".odsim-chart-{name} img")
                image.wait_for(timeout=LOAD_TIMEOUT)
                page.wait_for_function("e => e.complete && e.naturalWidth > 300", arg=image.element_handle(),
                                       timeout=LOAD_TIMEOUT)
            before = _chart_pixels(page)

            # Three steps: the month advances one at a time and every chart is redrawn.
            step = page.get_by_role("button", name="Step", exact=True)
            for expected in ("2023-02", "2023-03", "2023-04"):
                step.click()
                _wait_for_text(page, ".odsim-month", expected)
            stepped = _wait_until_all_changed(page, before)

            # A slider change and another scenario take effect on Reset: the model is rebuilt from month one.
            europe = page.get_by_role("slider", name=SLIDERS["trust_cn_europe"][0], exact=True)
            europe.focus()
            europe.press("End")
            assert europe.get_attribute("aria-valuenow") == "6"
            agents = page.get_by_role("slider", name="Number of agents", exact=True)
            agents.focus()
            agents.press("Home")
            assert agents.get_attribute("aria-valuenow") == "500"
            scenarios = list(scenario_files()[0])
            other = next(name for name in scenarios if name != "baseline")
            page.locator(".v-select").filter(has_text="Scenario").click()
            offered = page.get_by_role("option")
            offered.first.wait_for()
            assert sorted(offered.all_inner_texts()) == sorted(scenarios)
            page.get_by_role("option", name=other, exact=True).click()
            assert _month(page) == "2023-04"  # nothing changes before Reset

            page.get_by_role("button", name="Reset", exact=True).click()
            _wait_for_text(page, ".odsim-month", "2023-01")
            _wait_for_text(page, ".odsim-scenario", other)
            _wait_for_text(page, ".odsim-param-trust_cn_europe", "6")
            _wait_for_text(page, ".odsim-agents", "500")
            _wait_until_all_changed(page, stepped)

            step.click()
            _wait_for_text(page, ".odsim-month", "2023-02")

            RESULTS.mkdir(exist_ok=True)
            page.screenshot(path=str(RESULTS / "viz-browser.png"), full_page=True)
        finally:
            browser.close()

    assert not console_errors, f"browser console errors: {console_errors}"
    assert not failed, f"failed requests: {failed}"
    # Rendered from local assets only: nothing was fetched from a CDN or anywhere else.
    outside = [url for url in requests if urlparse(url).hostname not in ("127.0.0.1", None)
               and not url.startswith(("data:", "blob:"))]
    assert not outside, f"requests left the machine: {outside[:5]}"
