"""Calibration targets (calibration/targets.toml): the observed figures, for fitting and for drawing on plots."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from sim.calendar import month_label, parse_month

TARGETS_TOML = Path(__file__).resolve().parent.parent / "calibration" / "targets.toml"


@dataclass(frozen=True)
class Target:
    id: str
    metric: str
    start: str
    end: str
    statistic: str
    value: float
    tolerance: float
    population: str
    source: str
    grade: str

    @property
    def midpoint(self) -> str:
        """Month in the middle of the target's window, where plots draw the observed point."""
        return month_label((parse_month(self.start) + parse_month(self.end)) // 2)


def load_targets(path: Path = TARGETS_TOML) -> list[Target]:
    if not path.is_file():
        return []
    with open(path, "rb") as fh:
        return [Target(**spec) for spec in tomllib.load(fh).get("target", [])]
