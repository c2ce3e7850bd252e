"""A PI controller with anti-windup that outputs a *throttle level*.

The output ``u`` is how much to take away from the compute agents' duty cycle:
``duty = 1 - u``, with ``u`` in ``[0, u_max]`` (``u_max = 1 - min_duty``).  The error
is ``measurement - setpoint`` (positive = too hot / too much power), so::

    u = kp * e + ki * I,        I = integral of e dt

Anti-windup (clamping / conditional integration):

* ``I`` never leaves ``[0, u_max / ki]``: a long cool spell cannot bank negative
  "credit" that would delay the next throttle, and a long hot spell cannot wind
  the integral beyond what full throttle needs;
* while the output is saturated high and the error is still positive, ``I`` is
  not increased (it would only have to unwind later).

The integral always integrates down when the error is negative, so a released
machine returns to duty 1 smoothly instead of stepping.

An optional error dead zone stops integrating while ``|e| <= deadzone``: the duty is
applied through a dead band (small changes are not worth a command), and an
integrator that kept working inside it would drive a slow limit cycle around the
setpoint.  The price is a steady-state error of at most ``deadzone``.
"""

from __future__ import annotations

from typing import Any


class PIController:
    """PI on ``error = measurement - setpoint``; output clamped to ``[0, u_max]``.

    Args:
        kp: proportional gain (output per unit of error).
        ki: integral gain (output per unit of error-second).
        setpoint: the value the measurement is held at or below.
        u_max: largest output.
        deadzone: no integration while ``|error| <= deadzone``.
    """

    def __init__(self, kp: float, ki: float, setpoint: float, u_max: float = 0.9,
                 deadzone: float = 0.0) -> None:
        if kp < 0 or ki < 0:
            raise ValueError("gains must not be negative")
        if not 0.0 < u_max <= 1.0:
            raise ValueError(f"u_max must be in (0, 1], got {u_max}")
        self.kp, self.ki = kp, ki
        self.setpoint = setpoint
        self.u_max = u_max
        self.deadzone = max(0.0, deadzone)
        self.integral = 0.0
        self.error = 0.0
        self.output = 0.0
        self.saturated = False

    @property
    def integral_max(self) -> float:
        """The integral that alone gives full output (its anti-windup bound)."""
        return self.u_max / self.ki if self.ki > 0 else 0.0

    def update(self, measurement: float, dt: float) -> float:
        """One control step ``dt`` seconds after the last; returns the output ``u``."""
        e = float(measurement) - self.setpoint
        self.error = e
        if self.ki > 0 and dt > 0 and abs(e) > self.deadzone:
            unclamped = self.kp * e + self.ki * self.integral
            if not (unclamped >= self.u_max and e > 0):  # conditional integration
                self.integral = min(self.integral_max, max(0.0, self.integral + e * dt))
        u = self.kp * e + self.ki * self.integral
        self.saturated = u >= self.u_max or u <= 0.0
        self.output = min(self.u_max, max(0.0, u))
        return self.output

    def preload(self, output: float) -> None:
        """Set the integral so that zero error gives ``output`` (e.g. full throttle after
        an emergency pause, so agents resume slowly)."""
        if self.ki > 0:
            self.integral = min(self.integral_max, max(0.0, output / self.ki))
        self.output = min(self.u_max, max(0.0, output))

    def reset(self) -> None:
        """Forget the integral."""
        self.integral = 0.0
        self.output = 0.0
        self.error = 0.0

    def state(self) -> dict[str, Any]:
        """Plain-data state (for checkpoints)."""
        return {"integral": self.integral, "output": self.output}

    def load(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state`."""
        self.integral = min(self.integral_max, max(0.0, float(state.get("integral", 0.0))))
        self.output = min(self.u_max, max(0.0, float(state.get("output", 0.0))))
