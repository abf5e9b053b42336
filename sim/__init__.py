"""odsim: agent-based simulation of how open-weight and closed AI models diffuse among developers and firms."""

from sim.core.model import DiffusionModel

__all__ = ["DiffusionModel"]
