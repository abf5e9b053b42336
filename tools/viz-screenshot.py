"""Make docs/screenshot.png: start `odsim viz`, step the baseline to a month, photograph the page in Chromium.

    .venv/bin/python tools/viz-screenshot.py [--month 2026-06] [--out docs/screenshot.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from sim.core.calendar import month_label, parse_month  # noqa: E402
from viz_support import launch, serve  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--month", default="2026-06", help="month to show (YYYY-MM)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    parser.add_argument("--size", default="1600x1450", help="browser window, WIDTHxHEIGHT pixels")
    args = parser.parse_args()
    width, height = (int(x) for x in args.size.split("x"))
    target = parse_month(args.month)

    from playwright.sync_api import sync_playwright

    with serve() as server, sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(server.url)
        page.wait_for_function("document.querySelectorAll('.odsim-chart img').length === 4", timeout=120_000)
        month = parse_month(page.locator(".odsim-month").inner_text().strip())
        step = page.get_by_role("button", name="Step", exact=True)
        while month < target:
            month += 1
            step.click()
            page.wait_for_function(f"document.querySelector('.odsim-month').innerText.trim() === "
                                   f"'{month_label(month)}'", timeout=60_000)
        page.wait_for_timeout(2000)  # the charts arrive just after the month
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=args.out)
        browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
