"""Observation model: what each public source would have measured in the simulated world.

The sources see different populations (calibration-figures.md, section 8), so each observable is computed over
the agents that source sees: OpenRouter token shares over agents routing through a marketplace; Hugging Face
downloads and derivatives of open families only; Menlo-style enterprise shares weighted by spend among US firms;
regional shares over all usage. Shares are fractions 0-1; a share with nothing to divide is NaN.
"""

from __future__ import annotations

import functools

import mesa
import numpy as np

from sim.core import kernels
from sim.core.catalogue import ORIGINS, TIERS, families
from sim.core.population import REGIONS, SEGMENT_NAMES, USES

ASIA = ("china", "asia_pacific")  # OpenRouter's "Asia" (OR15: China, Singapore, ...) in the model's regions
LARGE_FIRMS = ("enterprise", "regulated_enterprise")  # ENT4's "large enterprises"
RETENTION_LAGS = (1, 5)  # months after adoption at which OR14 reports cohort retention


def weighted_total(weight: np.ndarray, values: np.ndarray) -> float:
    """sum_i weight_i x values_i in a fixed order. `weight @ values` goes to BLAS, whose threads split the sum by
    their number, so its last bits would depend on the machine's thread settings, not only on the seed."""
    return float(np.einsum("i,i->", weight, values, dtype=np.float64, casting="unsafe"))


@functools.cache  # called for every family in every month's measurement
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
    names += ["hf_downloads_cum_background", "hf_downloads_cum_all", "hf_downloads_cum_country_cn",
              "hf_downloads_cum_country_us"]
    names += ["hf_downloads_cum_open", "or_programming_share", "or_revenue_share_closed", "or_spend_share_asia"]
    names += [f"or_spend_share_{region}" for region in REGIONS]
    names += [f"ent_spend_share_{slug(f.name)}" for f in fams]
    names += ["ent_multihoming_3plus", "or_price_per_token", "or_price_per_token_closed", "or_price_per_token_open",
              "or_price_ratio_closed_open", "or_efficient_share_closed"]
    names += ["or_standard_share_closed"]
    names += ["ent_multihoming_5plus", "ent_top_family_share", "or_top_open_family_share"]
    names += [f"or_retention_{lag}m" for lag in RETENTION_LAGS]
    names += ["or_roleplay_share_open", "or_programming_share_anthropic"]
    return names


def _share(part: float, whole: float) -> float:
    return float(part / whole) if whole > 0 else float("nan")


def measure(model) -> dict[str, float]:
    """All observables for the model's current month."""
    usage = model.usage  # demand-weighted use of each family by group (DiffusionModel._usage_by_group)
    out: dict[str, float] = {}

    market = usage["marketplace"]
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
    out["hf_downloads_cum_open"] = float(model.downloads_cum[model.is_open].sum())
    out.update(_hugging_face_background(out["hf_downloads_cum_cn"], out["hf_downloads_cum_us"],
                                        out["hf_downloads_cum_open"], model.params))

    # Menlo's survey asks what share of a firm's LLM workloads runs on open models, firms weighted by their
    # spend; an agent's weight is its demand (spend scale), so this is the firms' demand-weighted open share.
    firms = usage["us_firms"]
    out["ent_share_open_us"] = _share(firms[model.is_open].sum(), firms.sum())

    for region in REGIONS:
        tokens = usage[f"region_{region}"]
        out[f"share_cn_{region}"] = _share(tokens[cn].sum(), tokens.sum())
    out.update(_spend_and_mix(model))
    out.update(_multihoming(model))
    out.update(_tokens_by_use(model))
    return out


def _tokens_by_use(model) -> dict[str, float]:
    """Marketplace tokens by the use they serve (OpenRouter classifies tokens by task): the chat/roleplay share
    of open-weight tokens (OR10; the model's chat/roleplay use is the task class OpenRouter calls roleplay plus
    general chat), the coding share of all tokens (OR9) and Anthropic's share of coding tokens (OR11)."""
    by_use = model.usage["marketplace_by_use"]  # uses x families, routed tokens
    open_tokens = by_use[:, model.is_open]
    anthropic = np.array([f.lab == "Anthropic" for f in model.families])
    coding = by_use[USES.index("coding")]
    return {"or_programming_share": _share(coding.sum(), by_use.sum()),
            "or_roleplay_share_open": _share(open_tokens[USES.index("chat_roleplay")].sum(), open_tokens.sum()),
            "or_programming_share_anthropic": _share(coding[anthropic].sum(), coding.sum())}


def _hugging_face_background(named_cn: float, named_us: float, named: float, params: dict) -> dict[str, float]:
    """Hugging Face downloads as HF1 counts them: all models, by the developer's country (docs/ODD.md 7.8).

    The named families are a share 1 - `hf_background_share` of every month's downloads; the rest (the background:
    small and non-LLM models, other developers' LLMs) is split `hf_background_cn_us` to Chinese developers, as much
    to US developers, and the remainder to everyone else. Both are drawn assumptions held for the run, so the
    cumulative background is the same multiple of the named families' cumulative downloads. Observation only: no
    agent reads it, and it scales with `downloads_scale` as the named downloads do."""
    share = params["hf_background_share"]
    background = named * share / (1.0 - share)
    each = background * params["hf_background_cn_us"]
    return {"hf_downloads_cum_background": background, "hf_downloads_cum_all": named + background,
            "hf_downloads_cum_country_cn": named_cn + each, "hf_downloads_cum_country_us": named_us + each}


def tier_spend(use: np.ndarray, tier_use: np.ndarray, tier_price: np.ndarray) -> np.ndarray:
    """Spend on each family (last axis), its use priced by tier: each cheaper tier's part of the use (`tier_use`,
    (..., cheaper tier, family)) at that tier's price, the rest at the flagship's (docs/ODD.md 7.9). `tier_price`
    is (..., family, tier), tiers in TIERS order."""
    cheaper = np.moveaxis(tier_price[..., 1:], -1, -2)  # (..., cheaper tier, family)
    return (use - tier_use.sum(axis=-2)) * tier_price[..., 0] + (tier_use * cheaper).sum(axis=-2)


def _spend_and_mix(model) -> dict[str, float]:
    """Spend shares (tokens x list price of the tier used: what OpenRouter's revenue by region and Menlo's spend by
    vendor count), the effective price per marketplace token (OR13; Nagle & Yue's price gap between closed and open
    tokens); multi-homing (ENT4) is in `_multihoming`."""
    out: dict[str, float] = {}
    spend = tier_spend(model.marketplace_by_region, model.marketplace_tiers_by_region,
                       model.tier_price_by_region)  # region x family
    total = spend.sum()
    tokens, closed = model.usage["marketplace"], ~model.is_open
    out["or_price_per_token"] = _share(total, tokens.sum())
    out["or_price_per_token_closed"] = _share(spend[:, closed].sum(), tokens[closed].sum())
    out["or_price_per_token_open"] = _share(spend[:, ~closed].sum(), tokens[~closed].sum())
    out["or_price_ratio_closed_open"] = _share(out["or_price_per_token_closed"], out["or_price_per_token_open"])
    for t, tier in enumerate(TIERS[1:]):
        out[f"or_{tier}_share_closed"] = _share(model.usage["marketplace_tiers"][t, closed].sum(), tokens[closed].sum())
    for r, region in enumerate(REGIONS):
        out[f"or_spend_share_{region}"] = _share(spend[r].sum(), total)
    out["or_spend_share_asia"] = _share(spend[[REGIONS.index(r) for r in ASIA]].sum(), total)
    out["or_revenue_share_closed"] = _share(spend[:, ~model.is_open].sum(), total)

    north_america = REGIONS.index("north_america")
    firms_spend = tier_spend(model.usage["us_firms"], model.usage["us_firms_tiers"],
                             model.tier_price_by_region[north_america])
    for name, value in zip(model.family_names, firms_spend):
        out[f"ent_spend_share_{slug(name)}"] = _share(value, firms_spend.sum())
    return out


def _multihoming(model) -> dict[str, float]:
    """How work spreads over families, as the sources that report it measure it.

    ENT4 (a survey of large, mostly US enterprises): shares of North American large firms, weighted by demand,
    among those using anything, that run three or more / five or more families (ENT4's 37% counts models, of
    which a family may offer several, so five families is the stricter test), and their mean share of work on
    their top family. OR8: the top open family's share of open-weight marketplace tokens. OR14: of the (marketplace
    agent, family) pairs that began 1 and 5 months ago, the demand-weighted share still in use."""
    pop, work = model.population, model.work
    large = model.large_north_american_firms
    families_used = (work[large] > 0).sum(axis=1)
    weight = pop.weight[large]
    active = weighted_total(weight, families_used > 0)
    out = {"ent_multihoming_3plus": _share(weighted_total(weight, families_used >= 3), active),
           "ent_multihoming_5plus": _share(weighted_total(weight, families_used >= 5), active),
           "ent_top_family_share": _share(weighted_total(weight, work[large].max(axis=1, initial=0.0)), active)}
    open_tokens = model.usage["marketplace"][model.is_open]
    out["or_top_open_family_share"] = _share(open_tokens.max(initial=0.0), open_tokens.sum())
    cohorts = np.array([model.month - lag for lag in RETENTION_LAGS])
    kept = np.empty((len(cohorts), len(work)), np.int32)
    kernels.pairs_adopted_in(model.adopted_month, work, cohorts, kept)
    for lag, cohort, pairs in zip(RETENTION_LAGS, cohorts, kept):
        still = weighted_total(pop.weight * model.uses_marketplace, pairs)
        out[f"or_retention_{lag}m"] = _share(still, model.new_pairs_weight.get(int(cohort), 0.0))
    return out


def large_north_american_firms(pop) -> np.ndarray:
    """Indices of the agents ENT4 surveys: North American large firms (`_multihoming`)."""
    return np.flatnonzero((pop.region == REGIONS.index("north_america"))
                          & np.isin(pop.segment, [SEGMENT_NAMES.index(s) for s in LARGE_FIRMS]))


def report(model, name: str) -> float:
    """Module-level reporter: one observable from the model's current measurement."""
    return model.observations[name]


def report_date(model) -> str:
    return model.date


class ObservationCollector(mesa.DataCollector):
    """Mesa's DataCollector for `model_reporters()`: the same table, filled with the month's date and observations
    as they are. Mesa's generic collect checks each reporter's kind and deep-copies each value (about a tenth of a
    calibration run's time); these values are floats and a string, immutable, so copying them changes nothing."""

    def collect(self, model):
        if hasattr(self, "_collection_steps"):
            self._collection_steps.append(model.time)
        observations = model.observations
        for name, values in self.model_vars.items():
            values.append(model.date if name == "date" else observations[name])


def model_reporters() -> dict:
    """DataCollector model reporters: the date plus every observable (picklable, for batch_run workers)."""
    reporters = {"date": report_date}
    reporters.update({name: functools.partial(report, name=name) for name in metric_names()})
    return reporters
