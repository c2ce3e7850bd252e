"""A first-order RC thermal model of a CPU package, driven by measured utilisation.

Used by the thermal agent where the machine has no temperature sensor (VMs): every
temperature it produces is labelled ``"modelled"``.  Per package::

    P = idle_watts + watts_per_util * utilisation_percent
    C dT/dt = P - (T - ambient_c) / R          (time constant tau = R * C)

For a power held constant over a step of ``dt`` the exact solution is used, so the
model is stable for any step length::

    T_ss = ambient_c + R * P
    T(t + dt) = T_ss + (T(t) - T_ss) * exp(-dt / tau)

which also gives the prediction ``horizon`` seconds ahead under the assumption that
the present power continues.  Pure: no clock, no I/O (except :func:`cpu_packages`,
which reads the topology under an injectable sysfs root).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RCParams:
    """Parameters of one package's model (see the module docstring)."""

    ambient_c: float = 35.0
    resistance_c_per_w: float = 0.5
    capacitance_j_per_c: float = 40.0
    watts_per_util: float = 0.65
    idle_watts: float = 10.0

    def __post_init__(self) -> None:
        if self.resistance_c_per_w <= 0 or self.capacitance_j_per_c <= 0:
            raise ValueError("resistance and capacitance must be positive")

    @property
    def tau_s(self) -> float:
        """Time constant R*C in seconds."""
        return self.resistance_c_per_w * self.capacitance_j_per_c

    def power_w(self, util_percent: float) -> float:
        """Model power at ``util_percent`` (clamped to 0..100)."""
        return self.idle_watts + self.watts_per_util * min(100.0, max(0.0, util_percent))

    def steady_state_c(self, util_percent: float) -> float:
        """Temperature the package settles at if ``util_percent`` is held."""
        return self.ambient_c + self.resistance_c_per_w * self.power_w(util_percent)

    def prediction_sensitivity(self, horizon_s: float) -> float:
        """How much the constant-load prediction ``horizon_s`` ahead moves per percent of
        utilisation (°C/%): ``R * watts_per_util * (1 - exp(-horizon_s / tau))``."""
        return self.resistance_c_per_w * self.watts_per_util * (1.0 - math.exp(-max(0.0, horizon_s) / self.tau_s))

    def util_for_temperature(self, temp_c: float) -> float:
        """The utilisation whose steady state is ``temp_c`` (may fall outside 0..100)."""
        if self.watts_per_util == 0:
            return math.inf if temp_c > self.steady_state_c(0.0) else -math.inf
        watts = (temp_c - self.ambient_c) / self.resistance_c_per_w
        return (watts - self.idle_watts) / self.watts_per_util


class RCThermalModel:
    """One package: integrates the RC equation step by step.

    Args:
        params: the model parameters.
        initial_c: the starting temperature (default: ambient, i.e. a cold start).
    """

    def __init__(self, params: RCParams, initial_c: float | None = None) -> None:
        self.params = params
        self.temperature_c = params.ambient_c if initial_c is None else float(initial_c)
        self.util_percent = 0.0
        self.power_w = params.power_w(0.0)

    def step(self, util_percent: float, dt: float) -> float:
        """Advance ``dt`` seconds with ``util_percent`` held; returns the new temperature."""
        if dt < 0:
            raise ValueError(f"dt must not be negative, got {dt}")
        self.util_percent = min(100.0, max(0.0, float(util_percent)))
        self.power_w = self.params.power_w(self.util_percent)
        target = self.params.ambient_c + self.params.resistance_c_per_w * self.power_w
        self.temperature_c = target + (self.temperature_c - target) * math.exp(-dt / self.params.tau_s)
        return self.temperature_c

    def predict(self, horizon_s: float, util_percent: float | None = None) -> float:
        """Temperature ``horizon_s`` ahead if ``util_percent`` (default: the last one) holds."""
        util = self.util_percent if util_percent is None else util_percent
        target = self.params.steady_state_c(util)
        return target + (self.temperature_c - target) * math.exp(-max(0.0, horizon_s) / self.params.tau_s)


class PackageModels:
    """One :class:`RCThermalModel` per CPU package, fed with per-core utilisation.

    Args:
        params: the same parameters for every package.
        packages: package id -> indices of its logical CPUs (see :func:`cpu_packages`).
    """

    def __init__(self, params: RCParams, packages: dict[str, list[int]]) -> None:
        if not packages:
            raise ValueError("at least one package is needed")
        self.params = params
        self.packages = {pkg: list(cpus) for pkg, cpus in packages.items()}
        self.models = {pkg: RCThermalModel(params) for pkg in self.packages}

    def package_util(self, per_core_percent: Sequence[float]) -> dict[str, float]:
        """Mean utilisation of each package's CPUs (CPUs missing from the sample are skipped)."""
        out: dict[str, float] = {}
        for pkg, cpus in self.packages.items():
            values = [per_core_percent[c] for c in cpus if 0 <= c < len(per_core_percent)]
            if not values:  # topology and sample disagree: use the machine mean
                values = list(per_core_percent) or [0.0]
            out[pkg] = sum(values) / len(values)
        return out

    def step(self, per_core_percent: Sequence[float], dt: float) -> dict[str, float]:
        """Advance every package; returns package id -> temperature."""
        utils = self.package_util(per_core_percent)
        return {pkg: self.models[pkg].step(utils[pkg], dt) for pkg in self.models}

    def hottest(self) -> tuple[str, float]:
        """(package id, temperature) of the hottest package."""
        pkg = max(self.models, key=lambda p: self.models[p].temperature_c)
        return pkg, self.models[pkg].temperature_c

    def predict_hottest(self, horizon_s: float) -> float:
        """The hottest predicted temperature ``horizon_s`` ahead at present utilisation."""
        return max(m.predict(horizon_s) for m in self.models.values())

    def total_power_w(self) -> float:
        """Sum of the packages' model power at the last step."""
        return sum(m.power_w for m in self.models.values())

    def temperatures(self) -> dict[str, float]:
        """Package id -> present temperature."""
        return {pkg: m.temperature_c for pkg, m in self.models.items()}

    def load_temperatures(self, temps: dict[str, float]) -> None:
        """Restore temperatures (from a checkpoint); unknown packages are ignored."""
        for pkg, value in temps.items():
            if pkg in self.models:
                self.models[pkg].temperature_c = float(value)


def cpu_packages(sysfs_root: Path = Path("/sys"), cpus: int | None = None) -> dict[str, list[int]]:
    """Package id -> logical CPU indices, from ``devices/system/cpu/cpu*/topology``.

    Falls back to one package holding CPUs ``0..cpus-1`` when the topology is not
    readable (fake sysfs trees, containers).
    """
    import os

    count = cpus if cpus is not None else (os.cpu_count() or 1)
    out: dict[str, list[int]] = {}
    for cpu in range(count):
        path = Path(sysfs_root) / f"devices/system/cpu/cpu{cpu}/topology/physical_package_id"
        try:
            pkg = str(int(path.read_text().strip()))
        except (OSError, ValueError):
            return {"0": list(range(count))}
        out.setdefault(pkg, []).append(cpu)
    return out or {"0": list(range(count))}


REFERENCE_PARAMS = RCParams()
"""The shipped default model, for which the default controller gains are tuned."""
REFERENCE_HORIZON_S = 10.0


def gain_scale(params: RCParams, horizon_s: float) -> float:
    """Factor (<= 1) for the controller gains when the model reacts more strongly than the
    default one (e.g. a short time constant or more watts per percent).

    The controller acts on the *predicted* temperature, which moves with utilisation at
    once (see :meth:`RCParams.prediction_sensitivity`); the default gains are tuned for
    the default model at the default horizon, so a model ``k`` times as sensitive gets
    gains divided by ``k`` and the loop gain stays what was tested.
    """
    reference = REFERENCE_PARAMS.prediction_sensitivity(REFERENCE_HORIZON_S)
    mine = params.prediction_sensitivity(horizon_s)
    return 1.0 if mine <= reference else reference / mine
