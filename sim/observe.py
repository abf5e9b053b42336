"""Observation model: what each public source would have measured in the simulated world.

The sources see different populations (calibration-figures.md, section 8), so each observable is computed over
the agents that source sees: OpenRouter token shares over agents routing through a marketplace; Hugging Face
downloads and derivatives of open families only; Menlo-style enterprise shares weighted by spend among US firms;
regional shares over all usage. Shares are fractions 0-1; a share with nothing to divide is NaN.
"""

from __future__ import annotations

import functools

import numpy as np

from sim.catalogue import ORIGINS, families
from sim.population import REGIONS


def slug(family: str) -> str:
    """Family name as used in metric names: 'gpt-oss' -> 'gpt_oss', 'Qwen' -> 'qwen'."""
    return family.lower().replace("-", "_")


def metric_names() -> list[str]:
    """Every observable, in a stable order."""
    fams = families()
    names = ["or_share_open", "or_share_cn", "or_share_us", "or_share_eu"]
    names += [f"or_share_{slug(f.name)}" for f in fams]
    names += [f"hf_downloads_cum_{slug(f.name)}" for f in fams if f.open_weights]
    names += [f"hf_derivatives_cum_{slug(f.name)}" for f in fams if f.open_weights]
    names += ["hf_downloads_cum_cn", "hf_downloads_cum_us", "hf_new_derivatives_share_cn", "ent_share_open_us"]
    names += [f"share_cn_{region}" for region in REGIONS]
    return names


def _share(part: float, whole: float) -> float:
    return float(part / whole) if whole > 0 else float("nan")


def measure(model) -> dict[str, float]:
    """All observables for the model's current month."""
    pop = model.population
    tokens = model.work * pop.weight[:, None]
    out: dict[str, float] = {}

    market = tokens[model.uses_marketplace].sum(axis=0)
    total = market.sum()
    out["or_share_open"] = _share(market[model.is_open].sum(), total)
    for origin in ORIGINS:
        out[f"or_share_{origin.lower()}"] = _share(market[model.origin == ORIGINS.index(origin)].sum(), total)
    for name, value in zip(model.family_names, market):
        out[f"or_share_{slug(name)}"] = _share(value, total)

    for lab in model.labs:
        if lab.family.open_weights:
            out[f"hf_downloads_cum_{slug(lab.family.name)}"] = lab.downloads_cum
            out[f"hf_derivatives_cum_{slug(lab.family.name)}"] = lab.derivatives_cum
    cn = model.origin == ORIGINS.index("CN")
    us = model.origin == ORIGINS.index("US")
    out["hf_downloads_cum_cn"] = float(model.downloads_cum[cn & model.is_open].sum())
    out["hf_downloads_cum_us"] = float(model.downloads_cum[us & model.is_open].sum())
    out["hf_new_derivatives_share_cn"] = _share(model.new_derivatives[cn].sum(), model.new_derivatives.sum())

    us_firms = pop.is_firm & (pop.region == REGIONS.index("north_america"))
    price = model.price_by_region[REGIONS.index("north_america")]
    cost = price * np.where(model.is_open, np.minimum(1.0, pop.selfhost_factor[us_firms, None]), 1.0)
    spend = (tokens[us_firms] * cost).sum(axis=0)
    out["ent_share_open_us"] = _share(spend[model.is_open].sum(), spend.sum())

    cn_tokens = np.bincount(pop.region, weights=tokens[:, cn].sum(axis=1), minlength=len(REGIONS))
    all_tokens = np.bincount(pop.region, weights=tokens.sum(axis=1), minlength=len(REGIONS))
    for r, region in enumerate(REGIONS):
        out[f"share_cn_{region}"] = _share(cn_tokens[r], all_tokens[r])
    return out


def report(model, name: str) -> float:
    """Module-level reporter: one observable from the model's current measurement."""
    return model.observations[name]


def report_date(model) -> str:
    return model.date


def model_reporters() -> dict:
    """DataCollector model reporters: the date plus every observable (picklable, for batch_run workers)."""
    reporters = {"date": report_date}
    reporters.update({name: functools.partial(report, name=name) for name in metric_names()})
    return reporters
