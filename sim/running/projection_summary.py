"""summary.md and the comparison charts of one `odsim project` invocation: every scenario against the baseline
(paired members, so a difference is the scenario's effect), regime shares, and a table per scenario.

Read back from the scenario folders sim/running/project.py writes, so the summary covers exactly the scenarios of
one invocation (same seeds and parameter draws) and nothing left from earlier ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from sim import statistics
from sim.running.outputs import SUMMARY_METRICS as RUN_LABELS
from sim.running.project import BASELINE, END, KEY_METRICS, REGIMES
from sim.running.store import atomic_write

SUMMARY_DATES = ("2026-12", "2027-12", "2030-12")
SUMMARY_METRICS = {**KEY_METRICS, **{k: label for k, label in RUN_LABELS.items()  # regions and downloads as in run
                                      if k.startswith(("share_cn_", "hf_downloads_cum_"))}}


def _fmt(metric: str, row, signed: bool = False) -> str:
    """A level (or, `signed`, a difference from baseline): median (90% interval), in billions or percent."""
    sign, to = ("+", " to ") if signed else ("", "-")
    if metric.startswith("hf_downloads"):
        return f"{row.q50 / 1e9:{sign},.2f}B ({row.q05 / 1e9:{sign},.2f}{to}{row.q95 / 1e9:{sign},.2f})"
    return f"{100 * row.q50:{sign}.1f}{'' if signed else '%'} ({100 * row.q05:{sign}.1f}{to}{100 * row.q95:{sign}.1f})"


def read_results(out: Path, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The named scenarios' complete results in `out`, baseline first."""
    found = {}
    for folder in (out / name for name in sorted(names)):
        files = [folder / f for f in ("quantiles.csv", "diff_vs_baseline.csv", "regimes.csv", "manifest.json")]
        if all(f.is_file() for f in files):
            found[folder.name] = {
                "quantiles": pd.read_csv(files[0], dtype={"date": str}),
                "diff": pd.read_csv(files[1], dtype={"date": str}),
                "regimes": pd.read_csv(files[2]),
                "manifest": json.loads(files[3].read_text()),
            }
    return dict(sorted(found.items(), key=lambda kv: kv[0] != BASELINE))


SUMMARY_INTRO = [
    "# Scenario projections to 2030",
    "",
    "Each scenario is an ensemble of simulation runs. Member k of every scenario uses the same random seed and "
    "the same behavioural parameters, so the *difference from baseline* is paired: it is the effect of the "
    "scenario in that member, and its interval is usually much narrower than the spread of the levels.",
    "",
    "How to read the numbers: a level is the median over members with the 90% interval (5th-95th percentile) "
    "in brackets; a difference is in percentage points (median and 90% interval of the paired differences). "
    "Intervals cover randomness in releases, awareness and choices and, when a calibration posterior exists, "
    "parameter uncertainty; they do not cover errors in the model's structure or in a scenario's premises, "
    "which each scenario file states with its sources and ASSUMPTIONS. 'Marketplace' means an OpenRouter-like "
    "API marketplace (developers and apps), not all AI use.",
    "",
]


def summary_markdown(results: dict[str, dict[str, Any]]) -> str:
    """The policy-analyst summary: which scenarios it covers, headline comparison, regime shares, then a table per
    scenario."""
    first = next(iter(results.values()))["manifest"]
    lines = SUMMARY_INTRO + [
        f"Scenarios: {', '.join(results)}, all projected by one `odsim project` invocation with the same "
        f"{first['members']} members (seeds {first['seeds']}) and the same parameter draws; other scenario folders in "
        "this output folder, from earlier invocations, are not part of this summary.", "",
        f"Parameters: {first['parameter_source']}. Agents per run: {first['agents']}.", ""]
    lines += _headline_section(results) + _regime_section(results)
    if BASELINE in results:
        lines += _baseline_moves_section(results[BASELINE]["quantiles"])
    for name, res in results.items():
        lines += _scenario_section(name, res)
    return "\n".join(lines) + "\n"


def _headline_section(results: dict[str, dict[str, Any]]) -> list[str]:
    """Each scenario's paired change from baseline in the headline shares by 2030-12."""
    headline = ["or_share_cn", "or_share_open", "ent_share_open_us", "or_share_us"]
    lines = ["## Headline: change from baseline by 2030-12 (percentage points)", "",
             "| Scenario | Members | " + " | ".join(KEY_METRICS[m] for m in headline) + " |",
             "|---|---|" + "---|" * len(headline)]
    for name, res in results.items():
        cells = []
        diff = res["diff"].set_index(["metric", "date"])
        for metric in headline:
            cells.append("reference" if name == BASELINE else _fmt(metric, diff.loc[(metric, END)], signed=True))
        lines.append(f"| {name} | {res['manifest']['members']} | " + " | ".join(cells) + " |")
    return lines


def _regime_section(results: dict[str, dict[str, Any]]) -> list[str]:
    """Share of runs ending in each regime: where lock-in splits the outcomes of one scenario."""
    regime_ids = ["cn_majority_marketplace", "open_majority_marketplace", "leader_us", "leader_cn",
                  "cn_majority_north_america", "cn_majority_europe", "cn_majority_global_south"]
    described = {r[0]: r[1] for r in REGIMES}
    lines = ["", "## Regimes in 2030-12: share of runs", "",
             "Lock-in can split outcomes: the same scenario may end with Chinese-origin models dominant in some "
             "runs and marginal in others. Shares near 0% or 100% mean the outcome is robust within the model.", "",
             "| Scenario | " + " | ".join(described[r] for r in regime_ids) + " |",
             "|---|" + "---|" * len(regime_ids)]
    for name, res in results.items():
        shares = res["regimes"].set_index("regime")["share_of_runs"]
        lines.append(f"| {name} | " + " | ".join(f"{100 * shares.get(r, float('nan')):.0f}%" for r in regime_ids)
                     + " |")
    return lines


def _baseline_moves_section(quantiles: pd.DataFrame) -> list[str]:
    """The baseline median's largest month-to-month jump in the data window: lock-in on single releases shows
    as jumps the observed shares never made."""
    window = ("2024-01", "2025-12")
    lines = ["", f"## Baseline month to month in the data window ({window[0]}..{window[1]})", "",
             "The largest change of the median from one month to the next. Observed shares moved smoothly "
             "(OpenRouter, calibration/targets.toml); a larger jump means runs lock in on single releases.", ""]
    for metric in ("or_share_open", "or_share_cn"):
        move, month = statistics.largest_monthly_move(quantiles, metric, *window)
        lines.append(f"- {KEY_METRICS[metric]}: {100 * move:.1f} points (into {month})")
    return lines


def _scenario_section(name: str, res: dict[str, Any]) -> list[str]:
    """One scenario: what it assumes and why, its shocks and sources, levels and paired differences by date."""
    m = res["manifest"]
    table = res["quantiles"].set_index(["metric", "date"])
    diff = res["diff"].set_index(["metric", "date"])
    dates = [d for d in SUMMARY_DATES if (next(iter(SUMMARY_METRICS)), d) in table.index]
    lines = ["", f"## {name}", "", " ".join(m["description"].split()), ""]
    if m.get("rationale"):
        lines += [f"*Why:* {' '.join(m['rationale'].split())}", ""]
    if m["shocks"]:
        lines += ["Shocks:", ""] + [f"- {s}" for s in m["shocks"]] + [""]
    if m.get("sources"):
        lines += ["Sources and assumptions:", ""] + [f"- {s}" for s in m["sources"]] + [""]
    header = "| Measure | " + " | ".join(dates)
    if name != BASELINE:
        header += " | " + " | ".join(f"vs baseline {d}" for d in dates)
    lines += [f"{m['members']} members. Levels: median (90% interval); differences from baseline: "
              "percentage points, or billions of downloads.", "",
              header + " |", "|---|" + "---|" * (len(dates) * (1 if name == BASELINE else 2))]
    for metric, label in SUMMARY_METRICS.items():
        cells = [_fmt(metric, table.loc[(metric, d)]) for d in dates]
        if name != BASELINE:
            cells += [_fmt(metric, diff.loc[(metric, d)], signed=True) for d in dates]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def write_summary(out: Path, plots: bool, names: Iterable[str]) -> Path:
    """summary.md and the cross-scenario charts from the named scenarios' folders in `out` (each file atomically):
    the scenarios of one invocation, so every comparison is paired (same seeds and parameter draws)."""
    from sim.figures import projection_plots

    results = read_results(out, names)
    if BASELINE not in results:
        raise RuntimeError(f"{out}: no baseline results to compare with")
    outputs = {"summary.md": lambda path: path.write_text(summary_markdown(results))}
    if plots:
        quantiles = {name: res["quantiles"] for name, res in results.items()}
        outputs["comparison.png"] = lambda path: projection_plots.comparison(quantiles, path)
        outputs["regions_2030.png"] = lambda path: projection_plots.regions_2030(quantiles, path, END)
    for name, write in outputs.items():
        atomic_write(out / name, write)
    return out / "summary.md"
