"""Writing a scenario ensemble's results: timeseries.csv, summary.md, manifest.json and plots.

Everything is written into a temporary folder next to the destination and moved into place at the end, so an
interrupted or failed run leaves the previous results untouched and never a half-written folder.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd

from sim.parameters import check_value, resolve
from sim.plots import plot_all
from sim.posterior import describe_source, parameter_sets, provenance
from sim.population import REGIONS
from sim.runner import ensemble, quantile_table
from sim.scenario import Scenario

SUMMARY_DATES = ("2025-12", "2027-12", "2030-12")
SUMMARY_METRICS = {
    "or_share_open": "Open-weight share of marketplace tokens",
    "or_share_cn": "Chinese-origin share of marketplace tokens",
    "or_share_us": "US-origin share of marketplace tokens",
    "or_share_eu": "EU-origin share of marketplace tokens",
    "ent_share_open_us": "Open-weight share of US enterprise spend",
    **{f"share_cn_{r}": f"Chinese-origin share of usage, {r.replace('_', ' ')}" for r in REGIONS},
    "hf_downloads_cum_cn": "Cumulative HF downloads, Chinese open families",
    "hf_downloads_cum_us": "Cumulative HF downloads, US open families",
}


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("odsim", "mesa", "numpy", "scipy", "pandas", "networkx", "matplotlib"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = "not installed"
    return out


def manifest(scenario: Scenario, seeds: list[int], member_parameters: list[dict]) -> dict:
    """Provenance of a run: member k's seed and the full parameter set it ran with (posterior draw, then the
    scenario's settings and options on top), plus the posterior file's hash and the rows drawn."""
    return {
        "scenario": scenario.name,
        "description": scenario.description,
        "files": list(scenario.files),
        "members": [{"seed": seed, "parameters": params} for seed, params in zip(seeds, member_parameters)],
        "posterior": provenance(len(seeds)),
        "parameter_source": describe_source() + "; the scenario's own settings override it",
        "shocks": [s.describe() for s in scenario.shocks],
        "seeds": seeds,
        "versions": versions(),
        "git_commit": git_commit(),
    }


def _format(metric: str, row: pd.Series) -> str:
    if metric.startswith("hf_"):
        return f"{row.q50 / 1e6:,.0f}M ({row.q05 / 1e6:,.0f}-{row.q95 / 1e6:,.0f}M)"
    return f"{100 * row.q50:.1f}% ({100 * row.q05:.1f}-{100 * row.q95:.1f})"


def summary_markdown(scenario: Scenario, table: pd.DataFrame, n_members: int) -> str:
    dates = [d for d in SUMMARY_DATES if d in set(table.date)]
    lines = [
        f"# {scenario.name}",
        "",
        scenario.description.strip(),
        "",
        f"Median over {n_members} ensemble members, with the 5-95% range in brackets.",
        "",
        "| Measure | " + " | ".join(dates) + " |",
        "|---|" + "---|" * len(dates),
    ]
    indexed = table.set_index(["metric", "date"])
    for metric, label in SUMMARY_METRICS.items():
        cells = [_format(metric, indexed.loc[(metric, d)]) for d in dates]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if scenario.shocks:
        lines += ["", "Shocks:", ""] + [f"- {s.describe()}" for s in scenario.shocks]
    return "\n".join(lines) + "\n"


def write_atomically(folder: Path, write) -> Path:
    """Call write(tmp_folder), then replace `folder` with it."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        write(tmp)
        old = folder.parent / f".{folder.name}.old-{os.getpid()}"
        if folder.exists():
            folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def run_scenario(
    scenario: Scenario, out_root: Path, seeds: int | None = None, n_agents: int | None = None,
    workers: int | None = None, base_seed: int = 0, progress: bool = True,
) -> Path:
    """Run the scenario's ensemble and write its results folder; returns the folder."""
    kwargs = scenario.model_kwargs()
    if n_agents is not None:
        kwargs["n_agents"] = check_value("n_agents", n_agents)
    seed_list = [base_seed + k for k in range(seeds or scenario.seeds)]
    draws = parameter_sets()
    frames = ensemble(kwargs, seed_list, workers=workers, desc=scenario.name, progress=progress,
                      parameter_sets=draws)
    table = quantile_table(frames)
    settings = {k: v for k, v in kwargs.items() if k != "shocks"}
    member_parameters = [resolve({**(draws(k) if draws else {}), **settings}) for k in range(len(seed_list))]

    def write(folder: Path):
        table.to_csv(folder / "timeseries.csv", index=False, float_format="%.6g")
        (folder / "summary.md").write_text(summary_markdown(scenario, table, len(frames)))
        info = manifest(scenario, seed_list, member_parameters)
        (folder / "manifest.json").write_text(json.dumps(info, indent=2) + "\n")
        plot_all(table, folder, scenario.name)

    return write_atomically(out_root / scenario.name, write)
