"""The release catalogue: what each lab shipped 2023-01 to 2026-01, as inputs for the Lab agents.

The CSV beside this module is a copy of the project's shared release catalogue (one row per flagship release,
each with its public source). This module turns it into per-family release events on one capability scale,
the Epoch Capabilities Index (ECI), which has the widest coverage (77 of 104 rows). Rows without an ECI get
one from a least-squares line on another benchmark over the rows that have both, as the catalogue notes
suggest: the benchmark of theirs whose line predicts ECI best out of sample. Rows with no capability figure at all are missing, not zero: they get the closed-frontier trend at their
date plus their family's mean offset from it (its lab's lag), with the spread of that offset as uncertainty.
Every release carries the standard deviation of its capability (0 when rated), so a run can draw it.
"""

from __future__ import annotations

import csv
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from sim.core.calendar import month_index, month_label

DATA_DIR = Path(__file__).parent / "data"
CATALOGUE_CSV = DATA_DIR / "model-catalogue.csv"
FAMILIES_TOML = DATA_DIR / "families.toml"

LICENCE_CLASSES = ("permissive", "conditional", "research", "closed")
ORIGINS = ("US", "CN", "EU")
LAG_CLASSES = ("frontier", "us_open", "eu", "cn")
# ASSUMPTION: ChatGPT (GPT-3.5) was the market before the first catalogued release, which the catalogue does not
# list; the GPT family is present from the start with the figures of its first catalogued release (GPT-4).
INCUMBENT = "GPT"
# Price tiers (docs/ODD.md 7.9). Each catalogue release belongs to one of its family's lines, read off the lab's own
# names. Efficient: the mark of a cheaper, smaller line (GPT-4o mini, o3-mini, Claude Haiku, Gemini Flash, Grok 4 Fast)
# or a small open size (Gemma 7B, Mistral 7B / NeMo / Small, gpt-oss-20b, GLM-4.5-Air, Llama 4 Scout,
# Qwen3-Next-80B-A3B: 3B active). Premium: the lab's top, most expensive line: Claude Opus, Gemini Ultra / Deep Think,
# GPT-4.5 and OpenAI's full o-series reasoning models (o1-preview, o1, o3; their -pro variants), each priced above
# the same lab's standard line of its time. Every other release is in the standard line (GPT-4o / 4.1 / 5, Sonnet,
# Gemini Pro, and the open families' large models).
EFFICIENT_NAME = re.compile(r"\b(mini|haiku|flash|fast|air|small|nemo|scout|20b|7b|a3b)\b", re.IGNORECASE)
PREMIUM_NAME = re.compile(r"\b(opus|ultra|deep think|gpt-4\.5|gpt-[\d.]+ pro|o\d(-preview|-pro)?)\b", re.IGNORECASE)
LINES = ("premium", "standard", "efficient")
# The tiers a family offers: the flagship (its most capable release, from any line), then the best release of each
# cheaper line while it is cheaper than the flagship. The premium line feeds the flagship only.
TIERS = ("flagship", "standard", "efficient")


def release_tier(model: str) -> str:
    """The family line of a release: "efficient" (EFFICIENT_NAME), "premium" (PREMIUM_NAME) or "standard"."""
    if EFFICIENT_NAME.search(model):
        return "efficient"
    return "premium" if PREMIUM_NAME.search(model) else "standard"


def licence_class(licence: str, open_weights: bool) -> str:
    """Classify a licence text: permissive (Apache-2.0, plain MIT), conditional (custom community licences,
    modified MIT with attribution or user caps), research (non-commercial), closed (API terms only)."""
    if not open_weights:
        return "closed"
    text = licence.lower()
    if "non-commercial" in text or "research" in text:
        return "research"
    if "modified" in text:
        return "conditional"
    if text.startswith("apache") or text.strip() == "mit":
        return "permissive"
    return "conditional"


def blended_price(price_in: float, price_out: float) -> float:
    """USD per million tokens for a 3:1 input:output token mix (an assumption; range 1:1 to 10:1)."""
    return (3.0 * price_in + price_out) / 4.0


@dataclass(frozen=True)
class Family:
    name: str
    lab: str
    origin: str
    open_weights: bool
    lag_class: str
    sizes: int


@dataclass(frozen=True)
class Release:
    family: str
    model: str
    date: str  # YYYY-MM
    capability: float  # ECI: rated, imputed from another benchmark, or from the lab's lag (never NaN)
    price: float  # blended USD per 1M tokens, NaN if unknown
    licence: str  # licence class
    capability_sd: float = 0.0  # uncertainty of an imputed capability (ECI points); 0 when the ECI is rated
    capability_from: str = "eci"  # "eci" (rated), the BENCHMARKS column it was imputed from, or "lag"
    tier: str = "standard"  # the family's line the release belongs to (release_tier, one of LINES)


@cache
def families() -> tuple[Family, ...]:
    with open(FAMILIES_TOML, "rb") as fh:
        table = tomllib.load(fh)
    return tuple(Family(name=name, **spec) for name, spec in table.items())


def _float(text: str) -> float:
    return float(text) if text.strip() else float("nan")


def _rows() -> list[dict]:
    with open(CATALOGUE_CSV, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _rows_until(cutoff: str | None) -> list[dict]:
    """Catalogue rows released by `cutoff` (all rows when None). Only a row's release date is read before it is
    kept, so a hindcast learns nothing from a release after its cutoff, not even through the imputation lines or
    the open-weight price fallback below."""
    rows = _rows()
    return rows if cutoff is None else [r for r in rows if r["release_date"][:7] <= cutoff]


def last_release_month() -> str:
    """Month of the catalogue's latest row, read from the release dates alone (checking a hindcast's cutoff must
    not read the releases it is meant not to know)."""
    return max(r["release_date"][:7] for r in _rows())


# The catalogue's other capability figures, each a candidate for filling a missing ECI (docs/ODD.md 6).
BENCHMARKS = ("aa_index_v3", "arena_elo_20250804", "arena_elo_2025_11", "mmlu_pro", "gpqa_diamond")
MIN_PAIRS = 8  # a benchmark rated together with ECI on fewer releases gives no usable line


@dataclass(frozen=True)
class BenchmarkLine:
    """Least-squares line of ECI on one benchmark over the releases rated on both."""

    benchmark: str
    slope: float
    intercept: float
    pairs: int
    sd: float  # in-sample residual standard deviation (residual sum of squares over n - 2)
    loo_sd: float  # root mean square leave-one-out residual: the line's error on a release it was not fitted to


def benchmark_line(benchmark: str, score: np.ndarray, eci: np.ndarray) -> BenchmarkLine:
    """The line and its errors; leave-one-out residuals from the hat matrix (residual / (1 - leverage)), so a
    line fitted on few releases is judged by how it predicts, not by how closely it fits its own points."""
    design = np.column_stack([np.ones_like(score), score])
    (intercept, slope), *_ = np.linalg.lstsq(design, eci)
    residuals = eci - (intercept + slope * score)
    leverage = np.einsum("ij,ji->i", design, np.linalg.pinv(design))
    loo = residuals / (1.0 - leverage)
    n = len(score)
    return BenchmarkLine(benchmark, float(slope), float(intercept), n, float(np.sqrt(residuals @ residuals / (n - 2))),
                         float(np.sqrt(loo @ loo / n)))


def benchmark_lines(rows: list[dict]) -> list[BenchmarkLine]:
    """The usable lines (at least MIN_PAIRS releases rated on both), most accurate out of sample first."""
    eci = np.array([_float(r["eci"]) for r in rows])
    lines = []
    for name in BENCHMARKS:
        score = np.array([_float(r[name]) for r in rows])
        both = ~np.isnan(eci) & ~np.isnan(score)
        if both.sum() >= MIN_PAIRS:
            lines.append(benchmark_line(name, score[both], eci[both]))
    return sorted(lines, key=lambda line: line.loo_sd)


def _imputed_eci(rows: list[dict]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """ECI per row, its standard deviation and its source ("eci", or the benchmark it was imputed from, "" when
    still missing): a missing ECI comes from the release's benchmark whose line predicts ECI best out of sample,
    sd = that line's leave-one-out residual sd. One benchmark, not an average: the lines' errors are correlated
    (0.27-0.84 on releases rated on both; benchmarks disagree by task), and a line on two benchmarks at once gains at
    most 0.26 ECI points out of sample, less than the sds' own sampling error (docs/ODD.md 6)."""
    eci = np.array([_float(r["eci"]) for r in rows])
    sd = np.zeros(len(rows))
    source = ["eci" if r["eci"].strip() else "" for r in rows]
    for line in benchmark_lines(rows):
        score = np.array([_float(r[line.benchmark]) for r in rows])
        fill = np.isnan(eci) & ~np.isnan(score)
        eci[fill] = line.intercept + line.slope * score[fill]
        sd[fill] = line.loo_sd
        for i in np.flatnonzero(fill):
            source[i] = line.benchmark
    return eci, sd, source


def _frontier_line(months: np.ndarray, capability: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of the least-squares line through the running best of dated capabilities."""
    order = np.argsort(months, kind="stable")
    slope, intercept = np.polyfit(months[order], np.maximum.accumulate(capability[order]), 1)
    return float(slope), float(intercept)


def _lag_imputed(rows: list[dict], eci: np.ndarray, sd: np.ndarray, simulated: np.ndarray) -> None:
    """Fill rows with no capability figure in place, from the lab's lag: the closed-frontier trend at the row's date
    plus the mean offset from it of the family's rated releases of the same openness (of its lag class's families
    when the family has fewer than two yet, as at an early hindcast cutoff); sd = the spread (standard deviation) of
    those offsets. Missing capability is missing, not zero (a zero made such a family unusable)."""
    months = np.array([month_index(r["release_date"][:7]) for r in rows], float)
    closed = simulated & (np.array([r["weights_open"] for r in rows]) == "no") & ~np.isnan(eci)
    slope, intercept = _frontier_line(months[closed], eci[closed])
    offset = eci - (intercept + slope * months)
    lag_class = {f.name: f.lag_class for f in families()}
    for i in np.flatnonzero(np.isnan(eci) & simulated):
        rated = [j for j, r in enumerate(rows) if simulated[j] and not np.isnan(eci[j])
                 and r["weights_open"] == rows[i]["weights_open"]]
        peers = [j for j in rated if rows[j]["family"] == rows[i]["family"]]
        if len(peers) < 2:
            peers = [j for j in rated if lag_class[rows[j]["family"]] == lag_class[rows[i]["family"]]]
        eci[i] = intercept + slope * months[i] + offset[peers].mean()
        sd[i] = offset[peers].std(ddof=1)


@cache
def releases(cutoff: str | None = None) -> tuple[Release, ...]:
    """Releases of the simulated families, in date order, restricted to each family's openness class; with a
    `cutoff` (YYYY-MM), only those released by then, derived from those rows alone (hindcasts)."""
    rows = _rows_until(cutoff)
    by_name = {f.name: f for f in families()}
    simulated = np.array([r["family"] in by_name and (r["weights_open"] == "yes") == by_name[r["family"]].open_weights
                          for r in rows])
    eci, eci_sd, source = _imputed_eci(rows)
    _lag_imputed(rows, eci, eci_sd, simulated)
    open_prices = [
        blended_price(_float(r["api_price_in_usd_per_mtok"]), _float(r["api_price_out_usd_per_mtok"]))
        for r in rows
        if r["weights_open"] == "yes" and r["api_price_in_usd_per_mtok"].strip()
    ]
    # Open weights without a first-party price are served by third-party hosts; their price is not in the
    # catalogue, so they take the median first-party price of the priced open releases (a data-derived rule).
    open_fallback = float(np.median(open_prices))
    out = []
    for row, capability, capability_sd, capability_from, wanted in zip(rows, eci, eci_sd, source, simulated):
        if not wanted:
            continue
        open_weights = row["weights_open"] == "yes"
        price = blended_price(_float(row["api_price_in_usd_per_mtok"]), _float(row["api_price_out_usd_per_mtok"]))
        if np.isnan(price) and open_weights:
            price = open_fallback
        out.append(
            Release(
                family=row["family"],
                model=row["model"],
                date=row["release_date"][:7],
                capability=float(capability),
                price=float(price),
                licence=licence_class(row["licence"], open_weights),
                capability_sd=float(capability_sd),
                capability_from=capability_from or "lag",
                tier=release_tier(row["model"]),
            )
        )
    return tuple(sorted(out, key=lambda r: (r.date, r.family, r.model)))


@dataclass(frozen=True)
class FrontierTrend:
    """Least-squares line through the best closed-model ECI at each release date (the closed frontier)."""

    eci_per_year: float
    level_at_end: float  # fitted level at the catalogue's last month
    end: str  # last month covered by the catalogue


@cache
def frontier_trend(cutoff: str | None = None) -> FrontierTrend:
    """The closed frontier's trend from the releases known by `cutoff` (all when None); the catalogue is then
    taken to cover every month up to the cutoff, releases or not."""
    known = releases(cutoff)
    closed = [r for r in known if r.licence == "closed" and r.capability_from != "lag"]
    months = np.array([month_index(r.date) for r in closed], dtype=float)
    slope, intercept = _frontier_line(months, np.array([r.capability for r in closed]))
    end = cutoff or max(r.date for r in known)
    return FrontierTrend(
        eci_per_year=float(slope * 12), level_at_end=float(intercept + slope * month_index(end)), end=end
    )


RELEASE_RATE_MONTHS = 24  # a family's release rate is counted over this many months ...
RELEASE_RATE_END = "2025-12"  # ... ending here (2024-2025), or at the cutoff if that is earlier


@cache
def release_rate_per_year(family: str, cutoff: str | None = None) -> float:
    """Releases per year over the RELEASE_RATE_MONTHS months ending at RELEASE_RATE_END (or at `cutoff` if
    earlier): the rate the family's lab keeps after the catalogue ends. At least one release per window for a
    family that has released; zero for a family with no release by the cutoff (a hindcast does not know it
    will exist)."""
    end = min(RELEASE_RATE_END, cutoff or RELEASE_RATE_END)
    start = month_label(month_index(end) - RELEASE_RATE_MONTHS + 1)
    dates = [r.date for r in releases(cutoff) if r.family == family]
    if not dates:
        return 0.0
    count = sum(1 for d in dates if start <= d <= end)
    return max(count, 1) / (RELEASE_RATE_MONTHS / 12)
