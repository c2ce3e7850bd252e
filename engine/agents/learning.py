"""The learning agent: learns which agent should get each task, from measured completions.

How it fits together (details in docs/ADAPTIVE.md):

* With ``load_balancing = true`` the orchestrator dispatches tasks with
  :class:`engine.dispatch.LearnedDispatch`.  It measures each completed task's service
  time and sends the records here in batches (message ``task_results``, low priority).
* This agent folds them into a :class:`engine.learning.DispatchLearner`: discounted
  per-(kind, agent) service-time estimates and a duration regression on the task
  features.  It publishes the estimates under ``dispatch_model`` (the policy samples
  its Thompson draws from them, so decisions stay in the orchestrator and take
  microseconds) and its progress under ``learning``.
* Progress is also in the status row: ``reward_tps`` (tasks/s completed), ``regret_ms``
  (expected-delay regret per decision against the best agent in hindsight),
  ``regret_total_s``, ``explore_pct``, ``pred_mape_pct`` and ``base_mape_pct``
  (duration prediction error, and the running-mean baseline's), ``observations``,
  ``agents``.
* ``snapshot()``/``restore()`` carry the learned state across restarts.

Scaling: see :mod:`engine.learning.scaling` for the learned scaling policy and the
measurement that decides between it and the threshold rule.

Requests it answers: ``learning_summary`` (the summary dict), ``learning_model`` (the
published model), ``learning_reset`` (forget everything).
"""

from __future__ import annotations

import time
from typing import Any

from engine.agents.base import BaseAgent
from engine.dispatch import LEARNED_MODEL_TOPIC, TASK_RESULTS_MESSAGE
from engine.learning.learner import DispatchLearner

SUMMARY_TOPIC = "learning"


class LearningAgent(BaseAgent):
    """Learns the dispatch policy's service-time model; shows reward, regret, error.

    Options:
        discount: forgetting factor per observation of a task kind (memory about
            ``1 / (1 - discount)`` observations).
        hindsight: later records of a kind to wait for before scoring a decision's regret.
        publish_interval: least time between two publications of the model (seconds).
    """

    agent_type = "learning"
    key_metric = "reward_tps"

    def __init__(self, agent_id: str = "", *, discount: float = 0.98, hindsight: int = 32,
                 publish_interval: float = 0.1, **options: Any) -> None:
        super().__init__(agent_id, discount=discount, hindsight=hindsight,
                         publish_interval=publish_interval, **options)
        self.learner = DispatchLearner(discount=float(discount), hindsight=int(hindsight))
        self.publish_interval = float(publish_interval)
        self._published_version = -1
        self._last_publish = 0.0
        self._last_summary = 0.0
        self._summary_version = -1
        self._last_prune = time.monotonic()
        self.restored = False

    # --- hooks -------------------------------------------------------------------------

    def on_start(self) -> None:
        self._publish(force=True)

    def handle_message(self, message: Any) -> Any:
        kind = message.message_type
        if kind == TASK_RESULTS_MESSAGE:
            payload = message.payload if isinstance(message.payload, list) else []
            self.learner.observe_many(payload)
            self._publish()
            return None
        if kind == "learning_summary":
            return self.learner.summary()
        if kind == "learning_model":
            return self.learner.model_payload()
        if kind == "learning_reset":
            self.learner = DispatchLearner(discount=self.learner.service.discount,
                                           hindsight=self.learner.hindsight)
            self._publish(force=True)
            return {"ok": True}
        return None

    def execute_cycle(self) -> None:
        now = time.monotonic()
        if now - self._last_prune >= 5.0:
            self._last_prune = now
            self._forget_departed()
        self._publish()

    def snapshot(self) -> Any:
        return self.learner.state()

    def restore(self, state: Any) -> None:
        if isinstance(state, dict):
            self.learner.load(state)
            self.restored = True

    # --- internals -------------------------------------------------------------------

    def _forget_departed(self) -> None:
        try:
            live = {e.agent_id for e in self.communicator.directory.live_entries()}
        except (OSError, ValueError):  # the directory is unreadable only while the swarm shuts down
            return
        for agent in self.learner.service.agents():
            if agent not in live:
                self.learner.forget(agent)

    def _publish(self, *, force: bool = False) -> None:
        now = time.monotonic()
        learner = self.learner
        if force or (learner.version != self._published_version
                     and now - self._last_publish >= self.publish_interval):
            self.publish(LEARNED_MODEL_TOPIC, learner.model_payload())
            self._published_version = learner.version
            self._last_publish = now
        if force or (learner.version != self._summary_version
                     and now - self._last_summary >= max(0.5, self.publish_interval)):
            self._last_summary = now
            self._summary_version = learner.version
            summary = learner.summary()
            summary["restored"] = self.restored
            self.publish(SUMMARY_TOPIC, summary)
            self._gauges(summary)

    def _gauges(self, s: dict[str, Any]) -> None:
        self.set_gauge("reward_tps", s["reward_tasks_per_s"])
        self.set_gauge("regret_ms", s["regret_ms_per_decision"])
        self.set_gauge("regret_total_s", s["regret_total_s"])
        self.set_gauge("explore_pct", 100.0 * s["exploration_rate"])
        if s["prediction_mape"] is not None:  # no gauge until a prediction has been scored
            self.set_gauge("pred_mape_pct", 100.0 * s["prediction_mape"])
            self.set_gauge("base_mape_pct", 100.0 * s["baseline_mape"])
        self.set_gauge("observations", s["observations"])
        self.set_gauge("agents", len(self.learner.service.agents()))
