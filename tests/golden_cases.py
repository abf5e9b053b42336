"""Golden runs: small models whose full DataCollector tables are stored in tests/golden/, so any numeric drift in
the model (a refactor, a compiled kernel, a changed default) fails tests/test_golden.py within seconds.

When a change is meant to move the numbers, regenerate the tables and commit them with the change:

    .venv/bin/python tests/golden_cases.py --regenerate
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.running.runner import run_member  # noqa: E402
from sim.inputs.scenario import load_scenario  # noqa: E402

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
SMALL = {"n_agents": 1000}


def _scenario(name: str) -> dict:
    return load_scenario(ROOT / "scenarios" / f"{name}.toml").model_kwargs()


def cases() -> dict[str, tuple[dict, int]]:
    """Name -> (model keyword arguments, seed). Covers the default path, the branches a kernel could miss
    (complete mixing, no choice, marketplace home share, the continuous split without workloads), scenarios
    with bans, price cuts and releases, the two- and one-tier settings, the former origin trust and task-specific
    capability on."""
    return {
        "defaults_seed0": (dict(SMALL), 0),
        "defaults_seed1": (dict(SMALL), 1),
        "complete_mixing": ({**SMALL, "network": "complete", "end": "2026-12"}, 2),
        "no_choice": ({**SMALL, "choice": False, "end": "2025-12"}, 3),
        "home_share": ({**SMALL, "marketplace_home_share": 0.3}, 4),
        "continuous_split": ({**SMALL, "workload_scale": 0.0, "end": "2026-12"}, 8),
        "security_bans": ({**_scenario("security_bans"), **SMALL}, 5),
        "us_open_push": ({**_scenario("us_open_push"), **SMALL}, 6),
        "closed_price_war": ({**_scenario("closed_price_war"), **SMALL}, 7),
        # The former models kept as settings (docs/ODD.md 7.9): two price tiers per family, and one.
        "two_tiers": ({**SMALL, "standard_tier": False, "firm_origin_trust": False}, 0),
        "one_tier": ({**SMALL, "price_tiers": False, "firm_origin_trust": False}, 0),
        # The former origin trust (docs/ODD.md 7.4): only regulated firms weigh it more than developers.
        "regulated_origin_trust": ({**SMALL, "firm_origin_trust": False}, 0),
        # Task-specific capability switched on (docs/ODD.md 7.4; off by default): the hash-drawn fits in the kernel.
        "task_fit": ({**SMALL, "task_fit_sd": 3.1, "end": "2026-12"}, 9),
    }


def run_case(name: str) -> pd.DataFrame:
    kwargs, seed = cases()[name]
    return run_member(kwargs, seed)


def golden_path(name: str) -> Path:
    return GOLDEN_DIR / f"{name}.csv"


def regenerate() -> None:
    GOLDEN_DIR.mkdir(exist_ok=True)
    for name in cases():
        run_case(name).to_csv(golden_path(name), float_format="%.17g")
        print(f"wrote {golden_path(name).relative_to(ROOT)}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        sys.exit("usage: python tests/golden_cases.py --regenerate")
    regenerate()
