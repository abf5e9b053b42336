"""Dated shocks: from a month on (optionally ramping until a later month), change a parameter, a set of
families' prices, capability, release rate or licence, or ban families in chosen regions and segments.

Parameter changes come in three forms: `set` moves a parameter to a value; `add` shifts it and `scale`
multiplies it, relative to whatever value the run has (a default or a calibration-posterior draw), so a scenario
says "trust falls by 1.5" without overwriting what calibration found. Relative changes are clipped to the
parameter's allowed range. A family price change may be limited to some regions (`regions = [...]`): the
family's price elsewhere is untouched (e.g. cheaper access to Chinese models through local cloud providers in the
Global South).

Shocks are stateless: the model asks each shock for its effect in the current month, so the same shocks give
the same path whatever the order they are listed in (family factors multiply, parameter changes apply in order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.core import checks as check
from sim.core.calendar import month_label
from sim.core.catalogue import LICENCE_CLASSES, ORIGINS, families
from sim.core.parameters import PARAMETERS
from sim.core.population import REGIONS, SEGMENT_NAMES

FAMILY_EFFECTS = ("price_factor", "capability_shift", "release_rate_factor", "licence")
PARAMETER_CHANGES = ("set", "add", "scale")
SHOCK_KEYS = ("date", "until", *PARAMETER_CHANGES, "families", "regions", "ban", "note") + FAMILY_EFFECTS
SELECTOR_KEYS = ("names", "origin", "open_weights")
BAN_KEYS = SELECTOR_KEYS + ("regions", "segments")
# Parameters a shock may not change: they fix the run's structure at build time.
STRUCTURAL = ("n_agents", "start", "end", "network", "choice", "mean_degree", "homophily_region",
              "homophily_segment", "workload_scale")


@dataclass(frozen=True)
class Shock:
    start: int  # month index
    until: int  # month index at which the change is complete (== start for a step change)
    set: tuple[tuple[str, float], ...] = ()
    add: tuple[tuple[str, float], ...] = ()
    scale: tuple[tuple[str, float], ...] = ()
    families: frozenset[str] = frozenset()
    price_factor: float = 1.0
    price_regions: frozenset[str] = frozenset()  # empty: the price change applies everywhere
    capability_shift: float = 0.0
    release_rate_factor: float = 1.0
    licence: str | None = None
    ban_families: frozenset[str] = frozenset()
    ban_regions: frozenset[str] = frozenset()
    ban_segments: frozenset[str] = frozenset()
    note: str = field(default="", compare=False)

    def progress(self, month: int) -> float:
        """0 before the shock, 1 once complete, linear in between."""
        if month < self.start:
            return 0.0
        if month >= self.until:
            return 1.0
        return (month - self.start + 1) / (self.until - self.start + 1)

    def describe(self) -> str:
        span = month_label(self.start) + (f" to {month_label(self.until)}" if self.until > self.start else "")
        return f"{span}: {self.note}" if self.note else span


def _select(source, key: str, spec: Any) -> frozenset[str]:
    """Families chosen by a selector table: explicit names and/or origin and openness filters."""
    check.table(source, key, spec, SELECTOR_KEYS)
    chosen = list(families())
    if "names" in spec:
        listed = check.names(source, f"{key}.names", spec["names"], [f.name for f in families()], what="family")
        chosen = [f for f in chosen if f.name in listed]
    if "origin" in spec:
        origin = check.choice(source, f"{key}.origin", spec["origin"], ORIGINS)
        chosen = [f for f in chosen if f.origin == origin]
    if "open_weights" in spec:
        open_weights = check.flag(source, f"{key}.open_weights", spec["open_weights"])
        chosen = [f for f in chosen if f.open_weights == open_weights]
    return frozenset(f.name for f in chosen)


def parse_shock(spec: Any, source: str = "", first: str | None = None, last: str | None = None) -> Shock:
    """Build a Shock from a TOML table, raising InputError (in `source`) that names the offending key. With
    `first` and `last` (the simulated months), a shock dated outside them is refused: it would change nothing."""
    if not isinstance(spec, dict):
        check.fail(source, "shock", "each [[shock]] must be a table")
    check.table(source, "", spec, SHOCK_KEYS)
    if "date" not in spec:
        check.fail(source, "date", "missing; every shock needs a start month YYYY-MM")
    start = check.month(source, "date", spec["date"], first, last)
    until = check.month(source, "until", spec["until"]) if "until" in spec else start
    if until < start:
        check.fail(source, "until", f"{spec['until']} is before date {spec['date']}")
    fields: dict[str, Any] = {"start": start, "until": until,
                              "note": check.text(source, "note", spec.get("note", ""))}

    for change in PARAMETER_CHANGES:
        if change in spec:
            fields[change] = _parameter_changes(source, change, spec[change])

    effects = [k for k in FAMILY_EFFECTS if k in spec]
    if effects and "families" not in spec:
        check.fail(source, effects[0], "needs a 'families' selector saying which families it applies to")
    if "families" in spec:
        fields.update(_family_effects(source, spec, effects))
    if "ban" in spec:
        fields.update(_ban(source, spec["ban"]))
    if "regions" in spec and "families" not in spec:
        check.fail(source, "regions", "limits a family price change: needs 'families' and 'price_factor'")
    if not any(k in spec for k in (*PARAMETER_CHANGES, "families", "ban")):
        check.fail(source, "shock", "changes nothing; give 'set', 'add', 'scale', 'families' with an effect, or "
                   "'ban'")
    return Shock(**fields)


def _family_effects(source, spec: dict, effects: list[str]) -> dict[str, Any]:
    if not effects:
        check.fail(source, "families", f"selects families but sets none of: {', '.join(FAMILY_EFFECTS)}")
    fields: dict[str, Any] = {"families": _select(source, "families", spec["families"])}
    if "price_factor" in spec:
        fields["price_factor"] = check.number(source, "price_factor", spec["price_factor"], 0.01, 100.0)
    if "regions" in spec:
        if set(effects) != {"price_factor"}:
            check.fail(source, "regions", "limits a price change only: use it with price_factor and no other "
                       "family effect (write other effects as a separate shock)")
        fields["price_regions"] = frozenset(check.names(source, "regions", spec["regions"], REGIONS))
    if "capability_shift" in spec:
        fields["capability_shift"] = check.number(source, "capability_shift", spec["capability_shift"], -50.0, 50.0)
    if "release_rate_factor" in spec:
        fields["release_rate_factor"] = check.number(source, "release_rate_factor", spec["release_rate_factor"],
                                                     0.0, 20.0)
    if "licence" in spec:
        fields["licence"] = check.choice(source, "licence", spec["licence"], LICENCE_CLASSES)
    return fields


def _ban(source, ban: Any) -> dict[str, Any]:
    check.table(source, "ban", ban, BAN_KEYS)
    selector = {k: v for k, v in ban.items() if k in SELECTOR_KEYS}
    if not selector:
        check.fail(source, "ban", "say which families are banned (names, origin or open_weights)")
    return {
        "ban_families": _select(source, "ban", selector),
        "ban_regions": frozenset(check.names(source, "ban.regions", ban["regions"], REGIONS)
                                 if "regions" in ban else REGIONS),
        "ban_segments": frozenset(check.names(source, "ban.segments", ban["segments"], SEGMENT_NAMES)
                                  if "segments" in ban else SEGMENT_NAMES),
    }


def _parameter_changes(source, change: str, table: Any) -> tuple[tuple[str, float], ...]:
    """Validate a `set`, `add` or `scale` table: parameters a shock may change, with values it allows."""
    if not isinstance(table, dict) or not table:
        check.fail(source, change, "must be a table of parameter = value")
    changes = []
    for name, value in table.items():
        key = f"{change}.{name}"
        if name in STRUCTURAL or name not in PARAMETERS or PARAMETERS[name].kind not in (int, float):
            allowed = [n for n, p in PARAMETERS.items() if n not in STRUCTURAL and p.kind in (int, float)]
            check.fail(source, key, f"not a parameter a shock can change; allowed: {', '.join(allowed)}")
        p = PARAMETERS[name]
        if change == "set":
            changes.append((name, check.parameter(source, key, name, value)))
        elif change == "add":
            span = p.high - p.low
            changes.append((name, check.number(source, key, value, -span, span)))
        else:
            changes.append((name, check.number(source, key, value, 0.0, 100.0)))
    return tuple(changes)


def effective_parameters(base: dict[str, Any], shocks: tuple[Shock, ...], month: int) -> dict[str, Any]:
    """Parameters in force in `month`. Each 'set' moves its parameter linearly from the base value to the target;
    'add' and 'scale' ramp a shift or factor on the value in force before them, clipped to the allowed range."""
    params = dict(base)
    for shock in shocks:
        progress = shock.progress(month)
        if progress == 0:
            continue
        for name, target in shock.set:
            params[name] = base[name] + (target - base[name]) * progress
        for name, delta in shock.add:
            params[name] = _clip(name, params[name] + delta * progress)
        for name, factor in shock.scale:
            params[name] = _clip(name, params[name] * (1 + (factor - 1) * progress))
    return params


def _clip(name: str, value: float) -> float:
    p = PARAMETERS[name]
    return min(max(value, p.low), p.high)


def family_modifiers(shocks: tuple[Shock, ...], family: str, month: int) -> dict[str, Any]:
    """Multiplicative price and release-rate factors, additive capability shift and licence override in force."""
    out = {"price_factor": 1.0, "capability_shift": 0.0, "release_rate_factor": 1.0, "licence": None}
    for shock in shocks:
        progress = shock.progress(month)
        if progress == 0 or family not in shock.families:
            continue
        if not shock.price_regions:
            out["price_factor"] *= 1 + (shock.price_factor - 1) * progress
        out["release_rate_factor"] *= 1 + (shock.release_rate_factor - 1) * progress
        out["capability_shift"] += shock.capability_shift * progress
        if shock.licence is not None:
            out["licence"] = shock.licence
    return out


def regional_price_factors(shocks: tuple[Shock, ...], family_names: list[str], month: int) -> np.ndarray:
    """Region x family factors on top of each family's price, from price changes limited to some regions
    (ones everywhere when there are none)."""
    factors = np.ones((len(REGIONS), len(family_names)))
    for shock in shocks:
        progress = shock.progress(month)
        if progress == 0 or not shock.price_regions:
            continue
        rows = [REGIONS.index(r) for r in shock.price_regions]
        cols = [i for i, name in enumerate(family_names) if name in shock.families]
        factors[np.ix_(rows, cols)] *= 1 + (shock.price_factor - 1) * progress
    return factors
