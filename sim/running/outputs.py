"""Writing a scenario ensemble's results: timeseries.csv, summary.md, manifest.json and plots.

Everything is written into a temporary folder next to the destination and swapped into place in one step
(sim.running.store.replace_folder), so an interrupted or failed run leaves the previous results untouched and never a
half-written folder; files a user put in the folder are kept. A lock per folder refuses a second writer.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator

import pandas as pd

from sim.core.parameters import check_value, resolve
from sim.figures.plots import plot_all
from sim.inputs.posterior import describe_source, parameter_sets, provenance
from sim.core.population import REGIONS
from sim.running.executor import Executor
from sim.running.runner import ensemble, quantile_table
from sim.core.checks import InputError
from sim.inputs.scenario import Scenario
from sim.running.store import FolderLock, replace_folder, software_provenance

SUMMARY_DATES = ("2025-12", "2027-12", "2030-12")
SUMMARY_METRICS = {
    "or_share_open": "Open-weight share of marketplace tokens",
    "or_share_cn": "Chinese-origin share of marketplace tokens",
    "or_share_us": "US-origin share of marketplace tokens",
    "or_share_eu": "EU-origin share of marketplace tokens",
    "ent_share_open_us": "Open-weight share of US enterprise workloads",
    **{f"share_cn_{r}": f"Chinese-origin share of usage, {r.replace('_', ' ')}" for r in REGIONS},
    "hf_downloads_cum_cn": "Cumulative HF downloads, Chinese open families",
    "hf_downloads_cum_us": "Cumulative HF downloads, US open families",
}


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
        **software_provenance(),
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


def run_scenario(
    scenario: Scenario, out_root: Path, seeds: int | None = None, n_agents: int | None = None,
    executor: Executor | None = None, base_seed: int = 0, progress: bool = True,
) -> Path:
    """Run the scenario's ensemble and write its results folder (replaced in one step); returns the folder.
    The caller holds the folder's lock (`lock`)."""
    kwargs = scenario.model_kwargs()
    if n_agents is not None:
        kwargs["n_agents"] = check_value("n_agents", n_agents)
    seed_list = [base_seed + k for k in range(seeds or scenario.seeds)]
    draws = parameter_sets()
    frames = ensemble(kwargs, seed_list, executor, desc=scenario.name, progress=progress, parameter_sets=draws)
    table = quantile_table(frames)
    settings = {k: v for k, v in kwargs.items() if k != "shocks"}
    member_parameters = [resolve({**(draws(k) if draws else {}), **settings}) for k in range(len(seed_list))]

    def write(folder: Path):
        table.to_csv(folder / "timeseries.csv", index=False, float_format="%.6g")
        table.to_parquet(folder / "timeseries.parquet", index=False)  # full precision, typed, for pandas/arrow
        (folder / "summary.md").write_text(summary_markdown(scenario, table, len(frames)))
        info = manifest(scenario, seed_list, member_parameters)
        (folder / "manifest.json").write_text(json.dumps(info, indent=2) + "\n")
        plot_all(table, folder, scenario.name)

    return replace_folder(out_root / scenario.name, write)


def lock(out_root: Path, scenario: Scenario) -> FolderLock:
    """The lock of one scenario's results folder (a file beside it: the folder itself is swapped)."""
    return FolderLock(out_root / f".{scenario.name}.lock", str(out_root / scenario.name))


def run_scenarios(scenarios: list[Scenario], out_root: Path, executor: Executor | None = None,
                  **options) -> Iterator[Path]:
    """Run each scenario into out_root/<name>/, yielding each folder when written. Refused before any work when
    two scenarios share a name or another process writes one of their folders."""
    seen: dict[str, Scenario] = {}
    for scenario in scenarios:
        if scenario.name in seen:
            raise InputError(scenario.files[-1], "name", f"{scenario.name!r} is also the name of "
                             f"{seen[scenario.name].files[-1]}; each scenario writes its own folder")
        seen[scenario.name] = scenario
    with contextlib.ExitStack() as stack:
        for scenario in scenarios:
            stack.enter_context(lock(out_root, scenario))
        for scenario in scenarios:
            yield run_scenario(scenario, out_root, executor=executor, **options)
