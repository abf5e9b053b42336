"""Scenario files (TOML): a name, a narrative, parameter overrides and dated shocks.

    name = "security_bans"
    description = "US and European regulated sectors ban Chinese-origin models from mid-2026."
    rationale = "..."                  # optional: why, for the analyst reading results
    sources = ["..."]                  # optional: where the premises come from
    includes = ["baseline.toml"]       # optional: scenarios composed first (paths relative to this file)

    [run]
    seeds = 20                         # ensemble members for `odsim run`

    [parameters]
    trust_cn_europe = 2.0

    [[shock]]
    date = "2026-07"
    ban = { origin = "CN", regions = ["north_america", "europe"], segments = ["regulated_enterprise"] }

Every key is checked before anything runs; a bad file raises InputError (sim/core/checks.py) naming the file, the key and
what is allowed. Several scenarios compose: parameters of later ones win, shocks add up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.core import checks as check
from sim.core.checks import InputError
from sim.core.parameters import resolve
from sim.core.shocks import Shock, parse_shock

SCENARIO_DIR = Path(__file__).resolve().parents[2] / "scenarios"
TOP_KEYS = ("name", "description", "rationale", "sources", "includes", "run", "parameters", "shock")
RUN_KEYS = ("seeds",)
MAX_SEEDS = 10_000


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    shocks: tuple[Shock, ...] = ()
    seeds: int = 10
    rationale: str = ""
    sources: tuple[str, ...] = ()
    files: tuple[str, ...] = ()

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for DiffusionModel (without rng)."""
        return {**self.parameters, "shocks": self.shocks}

    def resolved_parameters(self) -> dict[str, Any]:
        return resolve(self.parameters)


def read(path: Path) -> dict[str, Any]:
    """A scenario file's raw content (one InputError for a missing, binary, malformed or empty file)."""
    return check.read_toml(path, "scenario file", "at least a name")


def load_scenario(path: str | Path, _seen: tuple[Path, ...] = ()) -> Scenario:
    """Load and validate one scenario file, with its includes composed before it."""
    path = Path(path).resolve() if Path(path).exists() else Path(path)
    if path in _seen:
        check.fail(path, "includes", "includes itself (directly or through another file)")
    data = check.table(path, "", read(path), TOP_KEYS)
    name = check.folder_name(path, "name", data.get("name"))

    includes = check.texts(path, "includes", data.get("includes", []), what="scenario file paths")
    for inc in includes:
        if not (path.parent / inc).is_file():
            check.fail(path, "includes", f"no such scenario file: {path.parent / inc}")
    parts = [load_scenario(path.parent / inc, _seen + (path,)) for inc in includes]

    parameters = data.get("parameters", {})
    if not isinstance(parameters, dict):
        check.fail(path, "parameters", "must be a table of parameter = value")
    checked = {key: check.parameter(path, f"parameters.{key}", key, value) for key, value in parameters.items()}

    run = check.table(path, "run", data.get("run", {}), RUN_KEYS)
    seeds = check.whole(path, "run.seeds", run.get("seeds", parts[-1].seeds if parts else 10), 1, MAX_SEEDS)

    composed = {**(compose(parts).parameters if parts else {}), **checked}
    try:
        resolved = resolve(composed)
    except (KeyError, ValueError) as err:
        check.fail(path, "parameters", str(err))
    shock_specs = data.get("shock", [])
    if not isinstance(shock_specs, list):
        check.fail(path, "shock", "write shocks as [[shock]] tables")
    shocks = []
    for number, spec in enumerate(shock_specs, start=1):
        try:
            shocks.append(parse_shock(spec, first=resolved["start"], last=resolved["end"]))
        except InputError as err:
            raise err.within(path, f"shock[{number}]") from None

    own = Scenario(
        name=name, description=check.text(path, "description", data.get("description", "")), parameters=checked,
        shocks=tuple(shocks), seeds=seeds, rationale=check.text(path, "rationale", data.get("rationale", "")),
        sources=tuple(check.texts(path, "sources", data.get("sources", []))), files=(str(path),),
    )
    return compose([*parts, own], name=name) if parts else own


def compose(scenarios: list[Scenario], name: str | None = None) -> Scenario:
    """One scenario from several: later parameters win, shocks add up, seeds from the last."""
    if len(scenarios) == 1 and name is None:
        return scenarios[0]
    parameters: dict[str, Any] = {}
    for s in scenarios:
        parameters.update(s.parameters)
    last = scenarios[-1]
    return Scenario(
        name=name or "+".join(s.name for s in scenarios),
        description=" Then: ".join(s.description for s in scenarios if s.description),
        parameters=parameters,
        shocks=tuple(shock for s in scenarios for shock in s.shocks),
        seeds=last.seeds,
        rationale=" ".join(s.rationale for s in scenarios if s.rationale),
        sources=tuple(dict.fromkeys(src for s in scenarios for src in s.sources)),
        files=tuple(f for s in scenarios for f in s.files),
    )


def load_scenarios(paths: list[str | Path]) -> Scenario:
    """Load several files and compose them into one scenario (one file: that scenario)."""
    return compose([load_scenario(p) for p in paths])
