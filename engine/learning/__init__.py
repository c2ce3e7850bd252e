"""Online learning for the swarm's choices (pure code; the learning agent drives it).

* :mod:`engine.learning.service` -- discounted per-agent service-time estimates and the
  Thompson-sampled shortest-expected-delay choice the learned dispatch policy makes;
* :mod:`engine.learning.regression` -- recursive least squares predicting a task's
  duration from its features, with its prequential error;
* :mod:`engine.learning.learner` -- :class:`DispatchLearner`, what the learning agent
  runs: the two above plus reward, regret and exploration bookkeeping;
* :mod:`engine.learning.scaling` -- a learned scaling policy, the threshold rule, and
  the simulation that compares them.

Nothing here imports numpy, numba or any agent code, and every random choice takes a
seeded ``random.Random``, so all of it is unit-tested against synthetic environments.
"""

from __future__ import annotations

from engine.learning.learner import DispatchLearner
from engine.learning.regression import RLS, DurationPredictor
from engine.learning.service import ArmParams, ServiceTimeModel, choose_sed

__all__ = ["RLS", "ArmParams", "DispatchLearner", "DurationPredictor", "ServiceTimeModel", "choose_sed"]
