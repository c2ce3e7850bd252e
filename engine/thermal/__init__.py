"""Thermal modelling and control for the thermal agent (pure, testable with a fake clock).

- :mod:`engine.thermal.model` -- first-order RC model per CPU package, driven by
  measured utilisation (used, and labelled ``"modelled"``, where there is no sensor).
- :mod:`engine.thermal.predictor` -- trajectory extrapolation and prediction scoring.
- :mod:`engine.thermal.controller` -- PI controller with anti-windup.
- :mod:`engine.thermal.governor` -- the decisions: duty cycle, emergency pause, events.
"""

from __future__ import annotations

from engine.thermal.controller import PIController
from engine.thermal.governor import (
    Decision,
    GovernorConfig,
    ThermalGovernor,
    ThrottleEvent,
)
from engine.thermal.model import (
    PackageModels,
    RCParams,
    RCThermalModel,
    cpu_packages,
    gain_scale,
)
from engine.thermal.predictor import PredictionScorer, TrajectoryPredictor

__all__ = [
    "Decision", "GovernorConfig", "PIController", "PackageModels", "PredictionScorer",
    "RCParams", "RCThermalModel", "ThermalGovernor", "ThrottleEvent", "TrajectoryPredictor",
    "cpu_packages", "gain_scale",
]
