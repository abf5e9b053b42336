"""How long one step of the browser explorer takes at the default agent count (target: well under a second).

    python benchmarks/bench_viz.py             # server side: model step + redrawing the four charts
    python benchmarks/bench_viz.py --browser   # also end to end in Chromium: click Step -> month and all charts
                                                 updated on screen (starts `odsim viz` itself)

Prints figures; asserts nothing (timings depend on the machine and its load: measure on a quiet one).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from sim.app import ExploreModel  # noqa: E402
from sim.figures.explorer_views import render_views  # noqa: E402


def summary(label: str, seconds: list[float]) -> None:
    ms = sorted(1000 * s for s in seconds)
    p90 = ms[int(0.9 * (len(ms) - 1))]
    print(f"{label:<44} median {statistics.median(ms):7.0f} ms   p90 {p90:7.0f} ms   max {ms[-1]:7.0f} ms   "
          f"(n={len(ms)})")


def server_side(steps: int, agents: int | None) -> None:
    start = time.perf_counter()
    model = ExploreModel(n_agents=agents)
    built = time.perf_counter()
    render_views(model)
    drawn = time.perf_counter()
    print(f"agents: {len(model.work):,}")
    print(f"{'build model (Reset)':<44} {1000 * (built - start):7.0f} ms")
    print(f"{'first drawing of the four charts (Reset)':<44} {1000 * (drawn - built):7.0f} ms")
    step_times, render_times = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        model.step()
        t1 = time.perf_counter()
        render_views(model)
        t2 = time.perf_counter()
        step_times.append(t1 - t0)
        render_times.append(t2 - t1)
    summary("model step", step_times)
    summary("redraw four charts", render_times)
    summary("step + redraw (server side)", [a + b for a, b in zip(step_times, render_times)])


def browser(steps: int) -> None:
    from playwright.sync_api import sync_playwright
    from viz_support import launch, serve

    with serve() as server, sync_playwright() as playwright:
        b = launch(playwright)
        page = b.new_page(viewport={"width": 1600, "height": 1200})
        page.goto(server.url)
        page.wait_for_function("document.querySelector('.odsim-month')?.innerText.trim() === '2023-01'",
                               timeout=120_000)
        page.wait_for_function("document.querySelectorAll('.odsim-chart img').length === 4", timeout=120_000)
        button = page.get_by_role("button", name="Step", exact=True)
        times = []
        for _ in range(steps):
            page.evaluate("""() => { window.__before = [...document.querySelectorAll('.odsim-chart img')]
                .map(i => i.src); window.__month = document.querySelector('.odsim-month').innerText; }""")
            start = time.perf_counter()
            button.click()
            page.wait_for_function("""() => {
                const imgs = [...document.querySelectorAll('.odsim-chart img')];
                return document.querySelector('.odsim-month').innerText !== window.__month
                    && imgs.every((img, k) => img.src !== window.__before[k] && img.complete); }""",
                                   timeout=30_000, polling=20)
            times.append(time.perf_counter() - start)
        b.close()
    summary("browser: click Step -> month + charts shown", times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--agents", type=int, help="agents (default: the model default, 5000)")
    parser.add_argument("--browser", action="store_true", help="also measure in Chromium (needs /usr/bin/chromium)")
    args = parser.parse_args()
    server_side(args.steps, args.agents)
    if args.browser:
        browser(min(args.steps, 12))


if __name__ == "__main__":
    main()
