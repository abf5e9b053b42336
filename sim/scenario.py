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

Every key is checked before anything runs; a bad file raises ScenarioError naming the file, the key and what
is allowed. Several scenarios compose: parameters of later ones win, shocks add up.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.parameters import PARAMETERS, check_value, resolve
from sim.shocks import Shock, ShockError, parse_shock

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
TOP_KEYS = ("name", "description", "rationale", "sources", "includes", "run", "parameters", "shock")
RUN_KEYS = ("seeds",)
MAX_SEEDS = 10_000


class ScenarioError(ValueError):
    """A scenario file is invalid: says which file, which key and what is allowed."""

    def __init__(self, path: Path | str, key: str, message: str):
        super().__init__(f"{path}: {key}: {message}")
        self.path, self.key = str(path), key


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


def _read(path: Path) -> dict:
    if not path.is_file():
        raise ScenarioError(path, "file", "no such scenario file")
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(path, "toml", f"not valid TOML ({err})") from None


def _text(path, data, key) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise ScenarioError(path, key, "must be text")
    return value


def load_scenario(path: str | Path, _seen: tuple[Path, ...] = ()) -> Scenario:
    """Load and validate one scenario file, with its includes composed before it."""
    path = Path(path).resolve() if Path(path).exists() else Path(path)
    if path in _seen:
        raise ScenarioError(path, "includes", "includes itself (directly or through another file)")
    data = _read(path)
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise ScenarioError(path, unknown[0], f"unknown key; allowed: {', '.join(TOP_KEYS)}")
    name = data.get("name")
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        raise ScenarioError(path, "name", "required; letters, digits, '_' or '-' (it names the output folder)")

    includes = data.get("includes", [])
    if not isinstance(includes, list) or not all(isinstance(x, str) for x in includes):
        raise ScenarioError(path, "includes", "must be a list of scenario file paths")
    parts = [load_scenario(path.parent / inc, _seen + (path,)) for inc in includes]

    parameters = data.get("parameters", {})
    if not isinstance(parameters, dict):
        raise ScenarioError(path, "parameters", "must be a table of parameter = value")
    checked = {}
    for key, value in parameters.items():
        if key not in PARAMETERS:
            raise ScenarioError(path, f"parameters.{key}", f"unknown parameter; allowed: {', '.join(PARAMETERS)}")
        try:
            checked[key] = check_value(key, value)
        except ValueError as err:
            raise ScenarioError(path, f"parameters.{key}", str(err)) from None

    run = data.get("run", {})
    if not isinstance(run, dict):
        raise ScenarioError(path, "run", f"must be a table with keys: {', '.join(RUN_KEYS)}")
    for key in sorted(set(run) - set(RUN_KEYS)):
        raise ScenarioError(path, f"run.{key}", f"unknown key; allowed: {', '.join(RUN_KEYS)}")
    seeds = run.get("seeds", parts[-1].seeds if parts else 10)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= MAX_SEEDS:
        raise ScenarioError(path, "run.seeds", f"must be a whole number from 1 to {MAX_SEEDS}, got {seeds!r}")

    shock_specs = data.get("shock", [])
    if not isinstance(shock_specs, list):
        raise ScenarioError(path, "shock", "write shocks as [[shock]] tables")
    shocks = []
    for number, spec in enumerate(shock_specs, start=1):
        try:
            shocks.append(parse_shock(spec))
        except ShockError as err:
            raise ScenarioError(path, f"shock[{number}].{err.key}", str(err)) from None

    sources = data.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(x, str) for x in sources):
        raise ScenarioError(path, "sources", "must be a list of texts")
    own = Scenario(
        name=name, description=_text(path, data, "description"), parameters=checked, shocks=tuple(shocks),
        seeds=seeds, rationale=_text(path, data, "rationale"), sources=tuple(sources), files=(str(path),),
    )
    scenario = compose([*parts, own], name=name) if parts else own
    try:
        scenario.resolved_parameters()
    except (KeyError, ValueError) as err:
        raise ScenarioError(path, "parameters", str(err)) from None
    return scenario


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
