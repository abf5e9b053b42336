"""calibration/report.md and its figures, from the tables `odsim calibrate` writes to calibration/data/.

Everything in the report is computed from those tables, so `odsim calibrate --report` regenerates it without
running the model. Misses are reported like hits.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from sim.core.calendar import month_label, parse_month
from sim.figures.calibration_plots import (STRONG_CORRELATION, on_prior_scale, plot_correlations, plot_marginals,
                                           plot_out_of_sample, plot_targets)
from sim.calibration.predictive import best_row
from sim.statistics import weighted_mean_var, weighted_quantiles
from sim.running.store import write_text
from sim.inputs.targets import CROSSOVER_HORIZON, Target

# The figures the "done when" names: the posterior-predictive median must be within tolerance.
DONE_WHEN = ("OR1", "OR2", "OR3", "OR5", "HF2")
NOT_PINNED = 0.3  # posterior variance shrinks by less than this share of the prior's: not identified


def _read(data: Path, name: str) -> pd.DataFrame | None:
    path = data / f"{name}.csv"
    return pd.read_csv(path) if path.is_file() else None


def correlation_matrix(particles: pd.DataFrame, priors: list[dict]) -> pd.DataFrame:
    """Weighted posterior correlations, on the log10 scale for scale parameters (where the prior is uniform)."""
    names = [p["name"] for p in priors]
    x = np.column_stack([np.log10(particles[p["name"]]) if p["scale"] == "log" else particles[p["name"]]
                         for p in priors]).astype(float)
    w = particles["weight"].to_numpy()
    cov = np.cov(x, rowvar=False, aweights=w)
    sd = np.sqrt(np.diag(cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sd, sd)
    return pd.DataFrame(corr, index=names, columns=names)


# --- the markdown --------------------------------------------------------------------------------------------------
RUN_END = "2026-01"  # set from the calibration summary by write_report


def _fmt(t: Target, value: float) -> str:
    if t.statistic == "crossover" and np.isfinite(value) and value > parse_month(RUN_END):
        if value >= parse_month(RUN_END) + CROSSOVER_HORIZON:
            return "never (gap not closing)"
        return f"{month_label(int(round(value)))} (extrapolated)"
    return t.format(value)


def _observed_text(t: Target) -> str:
    if t.statistic == "crossover":
        return f"{t.start}..{t.end} (+-{t.tolerance:g} mo)"
    if t.statistic == "order":
        return "order " + " > ".join(m.replace("or_share_", "").replace("hf_derivatives_cum_", "")
                                     for m in (t.metric, *t.followed_by))
    sign = {"above": ">= ", "below": "<= "}.get(t.condition, "")
    return f"{sign}{t.format(t.value)} (+-{t.format(t.tolerance)})"


def _yes(flag) -> str:
    return "yes" if bool(flag) else "**no**"


INFORMATIVE_BELOW = 0.5  # a target is informative when fewer than this share of prior runs hit it (issue 18)


def informative(summary: pd.DataFrame) -> pd.Series:
    """Per target, whether a hit says something: fewer than half of the prior-predictive runs hit it (a figure
    that most prior draws already reach cannot tell a fit from no fit). All True when no prior check was run."""
    if "prior_hit_rate" not in summary:
        return pd.Series(True, index=summary.index)
    return summary["prior_hit_rate"] < INFORMATIVE_BELOW


def target_table(targets: list[Target], summary: pd.DataFrame) -> list[str]:
    prior = "prior_hit_rate" in summary
    extra = " prior runs hitting | informative |" if prior else ""
    lines = ["| target | statistic, window | observed | predicted median | 90% interval | median within "
             "tolerance | runs hitting |" + extra + " grade | fitted |",
             "|---|---|---|---|---|---|---|" + ("---|---|" if prior else "") + "---|---|"]
    by_id = summary.assign(informative=informative(summary)).set_index("target")
    for t in targets:
        if t.id not in by_id.index:
            continue
        r = by_id.loc[t.id]
        cells = f" {100 * r.prior_hit_rate:.0f}% | {'yes' if r.informative else 'no'} |" if prior else ""
        lines.append(
            f"| {t.id} | {t.statistic} of {t.metric}, {t.start}..{t.end} | {_observed_text(t)} | {_fmt(t, r.q50)} | "
            f"{_fmt(t, r.q05)} .. {_fmt(t, r.q95)} | {_yes(r.median_hit)} | {100 * r.hit_rate:.0f}% |{cells} "
            f"{t.grade} | {'yes' if t.fit else 'no'} |")
    return lines


def informative_line(summary: pd.DataFrame) -> str:
    """How many informative targets the predictive median hits, next to the plain count."""
    if "prior_hit_rate" not in summary:
        return ""
    mask = informative(summary).to_numpy()
    hits = summary.median_hit.astype(bool).to_numpy()
    return (f"Informative targets (fewer than half of the prior-predictive runs hit "
            f"them): {int(mask.sum())} of {len(summary)}; hit: {int((hits & mask).sum())} of {int(mask.sum())}. "
            f"Targets most prior runs already hit: {', '.join(summary.target[~mask]) or 'none'} "
            f"({int((hits & ~mask).sum())} of them hit).")


def parameter_table(particles: pd.DataFrame, priors: list[dict],
                    candidates: pd.DataFrame | None = None) -> tuple[list[str], list[str]]:
    """The posterior of each parameter against its prior, and the parameters the data leave loose."""
    w = particles["weight"].to_numpy()
    best = particles.iloc[best_row(particles, candidates)]
    lines = ["| parameter | prior | posterior median | 90% interval | best set | variance reduction | pinned down |",
             "|---|---|---|---|---|---|---|"]
    loose = []
    for p in priors:
        log = p["scale"] == "log"
        values = particles[p["name"]].to_numpy(float)
        x, lo, hi = on_prior_scale(particles, p)
        _, var = weighted_mean_var(x, w)
        reduction = 1 - var / ((hi - lo) ** 2 / 12)
        q05, q50, q95 = weighted_quantiles(values, w, [0.05, 0.5, 0.95])
        pinned = reduction >= NOT_PINNED
        if not pinned:
            loose.append(p["name"])
        prior = f"{'log-' if log else ''}U({p['low']:.4g}, {p['high']:.4g})"
        lines.append(f"| {p['name']} | {prior} | {q50:.4g} | {q05:.4g} .. {q95:.4g} | {best[p['name']]:.4g} | "
                     f"{100 * reduction:.0f}% | {'yes' if pinned else '**no**'} |")
    return lines, loose


def write_report(out: Path, targets: list[Target]) -> Path:
    """Write out/report.md and out/figures/*.png from out/data/: one section per stage that left its tables."""
    data = Path(out) / "data"
    figure_dir = Path(out) / "figures"
    figure_dir.mkdir(parents=True, exist_ok=True)
    summary = json.loads((data / "summary.json").read_text())
    particles = _read(data, "fit_particles")
    bands = _read(data, "bands")
    summary_fit = _read(data, "summary_fit")
    budget = summary["budget"]
    global RUN_END
    RUN_END = budget.get("end", RUN_END)

    lines = _run_section(summary, particles, _read(data, "fit_generations"), _read(data, "fit_history"),
                         _read(data, "noise_floor"))
    if summary_fit is not None:
        lines += _targets_section(targets, summary_fit, bands, budget["draws"], figure_dir)
    candidates = _read(data, "best_candidates")
    lines += _best_lines(candidates)
    lines += _parameters_section(particles, summary["priors"], figure_dir, candidates)
    summary_oos = _read(data, "summary_oos")
    if summary_oos is not None:
        lines += _out_of_sample_section(summary_oos, summary.get("oos_stopped", ""), budget["cutoff"], targets)
        summary_baseline = _read(data, "summary_baseline")
        if summary_baseline is not None:
            by_id = {t.id: t for t in targets}
            plot_out_of_sample(bands, targets, budget["cutoff"], figure_dir / "out_of_sample.png")
            lines += _baseline_section(summary_oos, summary_fit, summary_baseline, by_id, budget["cutoff"])
    lines += _later_stage_sections(data, budget["cutoff"])
    recovery = _read(data, "recovery")
    if recovery is not None:
        lines += _recovery_section(recovery, budget["recovery"])
    return write_text(Path(out) / "report.md", "\n".join(lines) + "\n")


def _run_section(summary: dict, particles: pd.DataFrame, generations: pd.DataFrame,
                 history: pd.DataFrame | None, floor_table: pd.DataFrame | None = None) -> list[str]:
    """Title, what ran (budget, fit, wall time) and the ABC generations, then history matching's waves."""
    budget = summary["budget"]
    lines = [
        "# Calibration report",
        "",
        "Written by `odsim calibrate` (regenerate with `odsim calibrate --report`); method in "
        "[README.md](README.md), targets in [targets.toml](targets.toml), settings in [config.toml](config.toml).",
        "",
    ]
    if summary.get("quick"):
        lines += ["> **Quick mode (`--quick`)**: a tiny budget for tests; these numbers mean nothing.", ""]
    seconds = summary.get("seconds", {})
    sims = summary.get("simulations", {})
    names = [c for c in particles.columns if c not in ("weight", "distance") and not c.startswith("stat:")]
    distinct = len(particles.drop_duplicates(subset=names))
    lines += [
        "## Run",
        "",
        f"- Fingerprint `{summary['fingerprint']}`; {budget['n_agents']} agents, runs 2023-01..end of window, "
        f"{budget['seeds']} {'fresh' if budget.get('fresh_seeds') else 'common-random-number'} seed(s) per "
        f"parameter set, {summary['workers']} worker(s).",
        f"- Fit: {len(particles)} equally weighted parameter sets in the posterior ({distinct} distinct); "
        f"{len(generations)} ABC-SMC generations, {sims.get('fit', 0)} parameter sets simulated "
        f"({sims.get('fit', 0) * budget['seeds']} model runs); stopped: {summary.get('fit_stopped', '')}.",
        "- Wall time of this invocation (seconds, this machine; a stage resumed from the cache takes almost none): "
        + ", ".join(f"{k} {v:g}" for k, v in seconds.items())
        + f"; total {sum(seconds.values()):.0f}.",
        "",
        "| generation | epsilon (mean absolute discrepancy, tolerance units) | parameter sets simulated | acceptance rate of the moves |",
        "|---|---|---|---|",
    ]
    start = "prior" if history is None else "history-matching sample"
    for _, g in generations.iterrows():
        eps = f"{start} (all accepted)" if g.epsilon >= 1e8 else f"{g.epsilon:.3f}"
        lines.append(f"| {int(g.generation)} | {eps} | {int(g.simulations)} | {g.acceptance:.3f} |")
    lines += ["", f"Smallest distance on a fit seed {particles['distance'].min():.3f}; posterior median distance "
              f"{weighted_quantiles(particles['distance'], particles['weight'], [0.5])[0]:.3f} "
              "(1 = every target off by its tolerance, on average).", ""]
    floor = summary.get("fit_noise_floor")
    if floor is not None and len(generations) > 1:
        epsilon = float(generations.epsilon.iloc[-1])
        lines += [f"Noise floor of the fit {floor:.3f}: the 90% quantile of the distance between the model at the best "
                  "set and data it generated itself on other seeds (recovery.noise_floor, "
                  f"{summary.get('fit_noise_floor_seeds', '')} data seeds); epsilon / floor = {epsilon:.3f} / "
                  f"{floor:.3f} = **{epsilon / floor:.2f}** (issue 19 asks for at most 1.5).", ""]
        lines += _floor_split_lines(summary, floor_table)
    if history is not None:
        lines += _history_section(history)
    return lines


FLOOR_TABLE_ROWS = 12  # targets shown in the noise floor's split: those the input draws make noisiest


def _floor_split_lines(summary: dict, table: pd.DataFrame | None) -> list[str]:
    """Where the fit's noise floor comes from: the same floor with every run's uncertain inputs at their central
    values (paths alone), and the targets whose discrepancy the input draws raise most."""
    central = summary.get("fit_noise_floor_central_inputs")
    if central is None or table is None:
        return []
    floor = summary["fit_noise_floor"]
    table = table.assign(gap=table.drawn - table.central).sort_values("gap", ascending=False, kind="stable")
    lines = [f"Where the floor comes from: with every run's uncertain inputs at their central values (the "
             f"capabilities of releases without a rating, imputed with a standard deviation, and the projection "
             f"assumptions) the same floor is {central:.3f}, so the paths' own randomness accounts for "
             f"{central / floor:.0%} of it and the input draws for the rest. Better input data (ratings of the "
             "imputed releases) would lower the floor; more agents lower only the paths' part. Mean discrepancy "
             "per target over the data seeds (tolerance units, capped as in the distance), the "
             f"{FLOOR_TABLE_ROWS} targets the input draws make noisiest:", "",
             "| target | inputs drawn (as in the fit) | inputs central | difference |", "|---|---|---|---|"]
    lines += [f"| {r.target} | {r.drawn:.2f} | {r.central:.2f} | {r.gap:+.2f} |"
              for r in table.head(FLOOR_TABLE_ROWS).itertuples()]
    return lines + [""]


def _best_lines(candidates: pd.DataFrame | None) -> list[str]:
    """How the best set (best.toml, the table's "best set" column) was chosen: fresh seeds against luck."""
    if candidates is None or candidates.empty:
        return []
    chosen = candidates.loc[candidates["fresh_distance"].idxmin()]
    return [f"Best set (best.toml): the {len(candidates)} sets with the smallest distance on their fit seed "
            f"({candidates['fit_distance'].min():.3f}-{candidates['fit_distance'].max():.3f}) were run again on "
            f"{int(chosen.fresh_seeds)} fresh seeds each; their mean distances there are "
            f"{candidates['fresh_distance'].min():.3f}-{candidates['fresh_distance'].max():.3f}, and the set with "
            f"the smallest ({chosen.fresh_distance:.3f} +- {chosen.fresh_distance_sd:.3f} sd over seeds; fit seed "
            f"{chosen.fit_distance:.3f}) is the best set.", ""]


def _history_section(history: pd.DataFrame) -> list[str]:
    """History matching's waves: runs, the NROY fraction each design came from, the emulators' training."""
    lines = ["History matching before the ABC (sim/calibration/history_matching.py): each wave simulates a design "
             "inside the space not ruled out yet (NROY) on fresh seeds and fits one emulator per target; a point is "
             "ruled out when its second-largest implausibility exceeds the cutoff. Each row's NROY fraction is the "
             "share of uniform prior draws the earlier waves keep: the space its design was drawn from.", "",
             "| wave | parameter sets | NROY fraction of the prior | emulator training runs | mean seed-noise sd "
             "(tolerance units) |", "|---|---|---|---|---|"]
    for _, h in history.iterrows():
        extra = ("" if pd.isna(h.get("training_runs")) else f"{int(h.training_runs)}",
                 "" if pd.isna(h.get("noise_sd")) else f"{h.noise_sd:.2f}")
        lines.append(f"| {h.wave} | {int(h.runs)} | {h.nroy_fraction:.3g} | {extra[0]} | {extra[1]} |")
    return lines + [""]


def _targets_section(targets: list[Target], summary_fit: pd.DataFrame, bands: pd.DataFrame, draws: int,
                     figure_dir: Path) -> list[str]:
    """Every target against the fit's posterior predictive: the table, the issue's required hits, the figures."""
    hits = summary_fit.set_index("target")
    lines = [
        "## Targets: observed against the posterior predictive",
        "",
        f"{draws} parameter sets drawn from the posterior, each run once with a fresh seed (so the "
        "intervals include the model's own randomness). 'Median within tolerance' applies the target's rule to "
        "the predictive median; 'runs hitting' is the share of single runs that satisfy it; 'prior runs hitting' "
        "the same for as many parameter sets drawn from the priors (the prior predictive), and a target is "
        "informative when fewer than half of those hit it.",
        "",
        *target_table(targets, summary_fit),
        "",
        "Required by the issue (posterior-predictive median within tolerance): "
        + ", ".join(f"{i} {'hit' if i in hits.index and hits.loc[i, 'median_hit'] else 'MISS'}"
                    for i in DONE_WHEN) + ".",
        "",
        f"Hits: {int(summary_fit.median_hit.sum())} of {len(summary_fit)} targets; misses: "
        + (", ".join(summary_fit.target[~summary_fit.median_hit.astype(bool)]) or "none") + ".",
        "",
        informative_line(summary_fit),
        "",
    ]
    groups = {"OpenRouter and US enterprise targets": [t for t in targets if not t.id.startswith("HF")],
              "Hugging Face targets": [t for t in targets if t.id.startswith("HF")]}
    for n, (title, group) in enumerate(groups.items()):
        name = f"targets_{'openrouter' if n == 0 else 'huggingface'}.png"
        plot_targets(bands, group, figure_dir / name, f"{title}: posterior predictive (50%, 90%) vs observed")
        lines += [f"![{title}](figures/{name})", ""]
    return lines


def _parameters_section(particles: pd.DataFrame, priors: list[dict], figure_dir: Path,
                        candidates: pd.DataFrame | None) -> list[str]:
    """What the data pin down: the parameter table, strong correlations, the priors' reasons, two figures."""
    lines = ["## Parameters", ""]
    table, loose = parameter_table(particles, priors, candidates)
    corr = correlation_matrix(particles, priors)
    plot_marginals(particles, priors, figure_dir / "marginals.png")
    plot_correlations(corr, figure_dir / "correlations.png")
    strong = [(a, b, corr.at[a, b]) for i, a in enumerate(corr.index) for b in corr.index[i + 1:]
              if np.isfinite(corr.at[a, b]) and abs(corr.at[a, b]) >= STRONG_CORRELATION]
    lines += [
        "Variance reduction = 1 - posterior variance / prior variance (on the log10 scale for scale parameters); "
        f"below {100 * NOT_PINNED:.0f}% the data do not pin the parameter down.",
        "",
        *table,
        "",
        "Not pinned down by the data: " + (", ".join(loose) or "none") + ".",
        "",
        "Strong posterior correlations (|r| >= 0.5; trade-offs the data cannot separate): "
        + ("; ".join(f"{a} ~ {b} ({r:+.2f})" for a, b, r in strong) or "none") + ".",
        "",
        "Priors departing from sim/core/parameters.py ranges: "
        + ("; ".join(f"{p['name']}: {p['why']}" for p in priors if p.get("why")) or "none") + ".",
        "",
        "![marginals](figures/marginals.png)",
        "",
        "![correlations](figures/correlations.png)",
        "",
    ]
    return lines


def _out_of_sample_section(summary_oos: pd.DataFrame, stopped: str, cutoff: str, targets: list[Target]) -> list[str]:
    """The refit on the targets ending by the cutoff: each held-out fitted figure against its prediction."""
    by_id = {t.id: t for t in targets}
    oos_rows = summary_oos[~summary_oos.in_sample.astype(bool)]
    oos_rows = oos_rows[oos_rows.target.map(lambda i: by_id[i].fit)]
    lines = [
        "## Out of sample: fitted on targets ending by " + cutoff + ", predicting the later ones",
        "",
        "In-sample targets: " + ", ".join(summary_oos.target[summary_oos.in_sample.astype(bool)]) + ". "
        f"Stopped: {stopped}.",
        "",
        "| held-out target | observed | median | 50% interval | 90% interval | in 50% | in 90% | median within "
        "tolerance |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _, r in oos_rows.iterrows():
        t = by_id[r.target]
        lines.append(f"| {t.id} | {_observed_text(t)} | {_fmt(t, r.q50)} | {_fmt(t, r.q25)} .. {_fmt(t, r.q75)} "
                     f"| {_fmt(t, r.q05)} .. {_fmt(t, r.q95)} | {_yes(r.in50)} | {_yes(r.in90)} | "
                     f"{_yes(r.median_hit)} |")
    n = len(oos_rows)
    lines += ["", f"Coverage: {int(oos_rows.in50.sum())} of {n} held-out figures inside the 50% interval "
              f"(about {n / 2:.0f} expected if calibrated), {int(oos_rows.in90.sum())} of {n} inside the 90% "
              f"interval (about {0.9 * n:.0f} expected).", ""]
    return lines


def _later_stage_sections(data: Path, cutoff: str) -> list[str]:
    """The hindcast, ablation and uncertainty sections, each written by its own stage's module when it ran."""
    lines = []
    hindcast = _read(data, "hindcast_table")
    if hindcast is not None:
        from sim.calibration.hindcast import markdown as hindcast_markdown

        lines += hindcast_markdown(hindcast)
    ablation = _read(data, "ablation_table")
    if ablation is not None:
        from sim.calibration.ablation import markdown as ablation_markdown

        lines += ablation_markdown(ablation, cutoff)
    indices, voi = _read(data, "uncertainty_indices"), _read(data, "value_of_information")
    if indices is not None and voi is not None:
        from sim.calibration.uncertainty import markdown as uncertainty_markdown

        lines += uncertainty_markdown(indices, voi)
    return lines


UNINFORMATIVE_WIDTH = 0.8  # a recovery fit whose median interval keeps more of the prior than this learned little


def _recovery_section(recovery: pd.DataFrame, budget: dict) -> list[str]:
    inside, n = int(recovery.inside90.sum()), len(recovery)
    replicates = recovery.groupby("replicate", sort=True)
    lines = [
        "## Parameter recovery",
        "",
        f"Data generated by the model at {replicates.ngroups} known parameter sets drawn from the prior (each on a "
        "seed outside every fitting seed) were fitted back with a small budget "
        f"({budget['population']} sets x up to {budget['generations']} generations, at most "
        f"{budget['max_simulations']} sets, {budget['n_agents']:,} agents, {budget['seeds']} fit seed(s)). "
        "Epsilon never goes below a set's noise floor: the distance between the model at the known values and "
        "data it generated itself on other seeds (90% quantile), below which a fit would start to reject the "
        "truth. A fit that runs out of budget stops above its floor, with intervals wider than the data allow.",
        "",
        f"**Known values inside their recovered 90% intervals: {inside} of {n}** (about {0.9 * n:.0f} expected if "
        "the intervals are calibrated: the known sets come from the prior the fit uses; fewer means overconfident "
        "intervals). An interval as wide as the prior (width 1) always covers and says nothing: the width column "
        "shows what the data taught the fit.",
        "",
        "| replicate | noise floor | final epsilon | stopped | inside | median width / prior width |",
        "|---|---|---|---|---|---|",
    ]
    for r, group in replicates:
        lines.append(f"| {r} | {group.noise_floor.iloc[0]:.3g} | {group.epsilon.iloc[0]:.3g} | "
                     f"{group.stopped.iloc[0]} | {int(group.inside90.sum())} of {len(group)} | "
                     f"{group.width_vs_prior.median():.2f} |")
    lines += [
        "",
        "| parameter | scale | replicate | true | recovered median | 90% interval | inside | width / prior width |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _, r in recovery.sort_values(["parameter", "replicate"], kind="stable").iterrows():
        lines.append(f"| {r.parameter} | {r.scale} | {r.replicate} | {r.true:.4g} | {r['median']:.4g} | "
                     f"{r.q05:.4g} .. {r.q95:.4g} | {_yes(r.inside90)} | {r.width_vs_prior:.2f} |")
    budget_limited = [r for r, group in replicates if group.width_vs_prior.median() > UNINFORMATIVE_WIDTH]
    if budget_limited:
        lines += ["", f"Replicate(s) {', '.join(map(str, budget_limited))}: median interval width above "
                  f"{UNINFORMATIVE_WIDTH} of the "
                  "prior; there the fit learned little (its budget ran out above the noise floor), so coverage "
                  "there says little either."]
    return lines + [""]


def _error(discrepancy: float) -> str:
    return f"{discrepancy:.2f}" if np.isfinite(discrepancy) else "n/a (no forecast)"


def _baseline_section(summary_oos: pd.DataFrame, summary_fit: pd.DataFrame | None, summary_baseline: pd.DataFrame,
                      by_id: dict[str, Target], cutoff: str) -> list[str]:
    """The model against a logistic curve on the OpenRouter series: per figure, then the mean error and verdict."""
    lines = [
        "### Against a logistic baseline on the OpenRouter series",
        "",
        "A logistic curve per series (share = L / (1 + exp(-k (t - t0))), uniform priors on L and t0, log-uniform "
        "on k) fitted to the same OpenRouter figures (sim/calibration/baselines.py: the tolerances as standard deviations): "
        f"with the cutoff, only the figures ending by {cutoff}; in the full fit, all of them. A series with no "
        "figure by the cutoff has no forecast (n/a). Error = distance of the predictive median from the observed "
        "figure in tolerance units (0 = exact or condition met, <= 1 = within tolerance).",
        "",
        "| target | observed | model median (90%) | model error | logistic median (90%) | logistic error | "
        "fitted on |",
        "|---|---|---|---|---|---|---|",
    ]
    logistic = summary_baseline[summary_baseline.stage == "logistic_oos"].set_index("target")
    full = summary_baseline[summary_baseline.stage == "logistic_full"].set_index("target")
    model = summary_oos.set_index("target")
    errors = {"model": [], "logistic": []}
    for target_id, r in logistic.iterrows():
        t = by_id[target_id]
        m = model.loc[target_id]
        held = not bool(r.in_sample)
        if held and np.isfinite(r.median_discrepancy):
            errors["model"].append(m.median_discrepancy)
            errors["logistic"].append(r.median_discrepancy)
        lines.append(f"| {t.id}{'' if held else ' (in sample)'} | {_observed_text(t)} | {_fmt(t, m.q50)} "
                     f"({_fmt(t, m.q05)} .. {_fmt(t, m.q95)}) | {m.median_discrepancy:.2f} | {_fmt(t, r.q50)} "
                     f"({_fmt(t, r.q05)} .. {_fmt(t, r.q95)}) | {_error(r.median_discrepancy)} | up to {cutoff} |")
    fitted_model = summary_fit.set_index("target") if summary_fit is not None else None
    for target_id, r in full.iterrows():
        t = by_id[target_id]
        if fitted_model is not None:
            m = fitted_model.loc[target_id]
            lines.append(f"| {t.id} (full fit) | {_observed_text(t)} | {_fmt(t, m.q50)} ({_fmt(t, m.q05)} .. "
                         f"{_fmt(t, m.q95)}) | {m.median_discrepancy:.2f} | {_fmt(t, r.q50)} ({_fmt(t, r.q05)} .. "
                         f"{_fmt(t, r.q95)}) | {r.median_discrepancy:.2f} | all |")
    lines += [""]
    if errors["model"]:
        lines += _baseline_verdict(errors, logistic, cutoff)
    return lines


def _baseline_verdict(errors: dict[str, list[float]], logistic: pd.DataFrame, cutoff: str) -> list[str]:
    """Which predicts the held-out figures better, and what the model adds over a curve either way."""
    em, el = float(np.mean(errors["model"])), float(np.mean(errors["logistic"]))
    verdict = ("The logistic curve predicts the held-out OpenRouter figures as well as or better than the "
               "agent-based model" if el <= em else
               "The agent-based model predicts the held-out OpenRouter figures better than the logistic curve")
    return [
        f"Mean out-of-sample error on the {len(errors['model'])} held-out OpenRouter figures the logistic curve "
        f"forecasts: model {em:.2f}, logistic {el:.2f}. "
        f"{verdict}. With the cutoff at {cutoff} the logistic curve has "
        + ("no OpenRouter figure" if logistic.in_sample.sum() == 0 else
           f"{int(logistic.in_sample.sum())} OpenRouter figure(s)")
        + " per series to learn from, so its prediction is mostly its prior; the model's prediction also "
        "draws on the Hugging Face and enterprise figures and on its structure (release catalogue, prices, "
        "capability lags).",
        "",
        "What the agent-based model adds over a fitted curve: the curve only extrapolates a shape, while the "
        "model explains the shares by mechanisms (prices, capability gaps from the release catalogue, "
        "licences, origin trust by region, word of mouth, marketplace routing), reproduces several sources at "
        "once with one set of parameters, and can answer what-if questions (bans, export controls, price "
        "cuts) that a curve fitted to the past cannot.",
        "",
        "![out of sample](figures/out_of_sample.png)",
        "",
    ]
