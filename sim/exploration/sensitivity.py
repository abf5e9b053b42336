"""Global sensitivity analysis on top of the sweep engine: Morris screening or Sobol indices (SALib).

The spec's design decides the method: `design = "morris"` (elementary effects along `samples` trajectories) or
`design = "saltelli"` (Saltelli's sampling for first-order and total Sobol indices, `samples` = N, a power of 2).
The runs go through sim.exploration.sweep, so they checkpoint and resume like any sweep. Each design point's output is the
mean over its replicates (the indices describe the parameters' effect on the expected outcome, not on noise).

Design coordinates are in the unit cube, mapped by the spec onto each parameter's range, so Morris mu* reads as
"change in the output when the parameter moves across its whole range" and is comparable across parameters.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from sim.core.checks import InputError
from sim.exploration.sweep import read_results
from sim.inputs.sweep_spec import SweepSpec

METHODS = {"morris": "Morris elementary effects", "saltelli": "Sobol indices (Saltelli sampling)"}
CONF_LEVEL = 0.95


def check_method(spec: SweepSpec) -> None:
    if spec.design not in METHODS:
        raise InputError(spec.path, "design", f"odsim sensitivity needs design 'morris' or 'saltelli', got "
                        f"{spec.design!r} (use odsim sweep and odsim discover for other designs)")


def outcome_matrix(spec: SweepSpec, folder: Path) -> pd.DataFrame:
    """Mean over replicates of each output, one row per design point (in point order)."""
    observables = sorted({obs for obs, _ in spec.sensitivity_outputs})
    months = sorted({month for _, month in spec.sensitivity_outputs})
    table = read_results(folder, columns=["point", "month", *observables], months=months)
    means = table.groupby(["point", "month"])[observables].mean().unstack("month")
    out = pd.DataFrame({f"{obs}@{month}": means[(obs, month)] for obs, month in spec.sensitivity_outputs})
    return out.reindex(np.arange(spec.n_points()))


def analyse(spec: SweepSpec, folder: Path) -> pd.DataFrame:
    """Tidy table: output, parameter, index (mu_star, sigma, mu / S1, ST), value and its confidence half-width."""
    from SALib.analyze import morris, sobol

    check_method(spec)
    y = outcome_matrix(spec, folder)
    problem = spec.problem()
    rows = []
    for output in y.columns:
        values = y[output].to_numpy(dtype=float)
        missing = np.isnan(values).sum()
        if missing:
            raise InputError(spec.path, "sensitivity.outputs", f"{output} is undefined (nothing to divide) in "
                            f"{missing} of {len(values)} design points; choose another output")
        if spec.design == "morris":
            res = morris.analyze(problem, spec.unit_design(), values, num_levels=spec.levels,
                                 conf_level=CONF_LEVEL, seed=spec.seed)
            for j, name in enumerate(spec.parameter_names):
                rows.append((output, name, "mu_star", res["mu_star"][j], res["mu_star_conf"][j]))
                rows.append((output, name, "sigma", res["sigma"][j], np.nan))
                rows.append((output, name, "mu", res["mu"][j], np.nan))
        else:
            res = sobol.analyze(problem, values, calc_second_order=False, conf_level=CONF_LEVEL, seed=spec.seed)
            for j, name in enumerate(spec.parameter_names):
                rows.append((output, name, "S1", res["S1"][j], res["S1_conf"][j]))
                rows.append((output, name, "ST", res["ST"][j], res["ST_conf"][j]))
    return pd.DataFrame(rows, columns=["output", "parameter", "index", "value", "conf"])


def plot(indices: pd.DataFrame, spec: SweepSpec, path: Path) -> None:
    """One horizontal bar chart per output, parameters sorted by importance, error bars = confidence interval."""
    from sim import figures  # first: it selects the Agg backend

    import matplotlib.pyplot as plt

    shown = ["mu_star"] if spec.design == "morris" else ["S1", "ST"]
    outputs = list(dict.fromkeys(indices.output))
    d = len(spec.axes)
    fig, axes = plt.subplots(1, len(outputs), figsize=(4.5 * len(outputs), 1.2 + 0.45 * d * len(shown)),
                             squeeze=False)
    for ax, output in zip(axes[0], outputs):
        sub = indices[indices.output == output]
        order = (sub[sub["index"] == shown[-1]].sort_values("value").parameter.tolist())
        y = np.arange(len(order))
        height = 0.8 / len(shown)
        for k, index in enumerate(shown):
            part = sub[sub["index"] == index].set_index("parameter").loc[order]
            ax.barh(y + (k - (len(shown) - 1) / 2) * height, part.value, height, xerr=part.conf.fillna(0),
                    label=index, capsize=2)
        ax.set_yticks(y, order)
        ax.set_title(output, fontsize=10)
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_xlabel("mu* (output change across the range)" if spec.design == "morris" else "Sobol index")
        if len(shown) > 1:
            ax.legend(fontsize=8)
    fig.suptitle(f"{spec.name}: {METHODS[spec.design]}, {CONF_LEVEL:.0%} intervals", fontsize=11)
    figures.save(fig, path, 120)


def summary(indices: pd.DataFrame, spec: SweepSpec) -> str:
    lines = [f"# Sensitivity: {spec.name}", "", f"{METHODS[spec.design]} over {spec.n_points()} design points x "
             f"{spec.replicates} replicates (outputs averaged over replicates), scenario {spec.scenario.name}. "
             f"Values with their {CONF_LEVEL:.0%} confidence half-width.", ""]
    main = "mu_star" if spec.design == "morris" else "ST"
    for output in dict.fromkeys(indices.output):
        sub = indices[indices.output == output]
        wide = sub.pivot(index="parameter", columns="index", values="value")
        conf = sub.pivot(index="parameter", columns="index", values="conf")
        wide = wide.sort_values(main, ascending=False)
        cols = ["mu_star", "sigma"] if spec.design == "morris" else ["S1", "ST"]
        lines += [f"## {output}", "", "| parameter | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for name, row in wide.iterrows():
            cells = [f"{row[c]:.3f}" + (f" ± {conf.loc[name, c]:.3f}" if not np.isnan(conf.loc[name, c]) else "")
                     for c in cols]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def write(spec: SweepSpec, folder: Path) -> Path:
    """Analyse a finished sweep and write FOLDER/sensitivity/ (indices.csv, sensitivity.png, summary.md)."""
    from sim.running.store import replace_folder

    indices = analyse(spec, folder)

    def fill(tmp: Path) -> None:
        indices.to_csv(tmp / "indices.csv", index=False, float_format="%.6g")
        plot(indices, spec, tmp / "sensitivity.png")
        (tmp / "summary.md").write_text(summary(indices, spec))

    return replace_folder(folder / "sensitivity", fill)
