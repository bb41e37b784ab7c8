"""REINFORCE with ENAS's LSTM controller (``controller.py``) as an ask/tell algorithm: ``ask`` samples a
genotype from the controller, ``tell`` takes one policy-gradient step on the told genotype with the
trial's value as reward (Williams 1992; the controller and its squashing as in Pham et al. 2018;
NAS-Bench-201 compares this baseline).

- advantage = (value - baseline) / scale: the baseline is a moving average of the values told
  (``baseline_decay``), the scale a moving root mean square of the advantages (same decay), both
  bias-corrected as Adam's moments are. Dividing by the scale makes the same settings work for
  rewards in percent (tables) and in fractions (trained candidates), and gives ``entropy_weight`` a
  meaning that does not depend on the reward's unit;
- loss = -advantage * log p(genotype) - entropy_weight * entropy, summed over ``batch`` records, then
  one Adam step (``lr``, ``beta1``);
- a failed trial (value None) changes nothing; neither does a genotype the controller cannot sample
  (e.g. an op outside a cell space's ``sample_ops``), nor the first value (it starts the baseline);
- ``unique`` (100): ``ask`` draws up to this many samples and proposes the first whose canonical form
  was neither told nor proposed (the last one when all were). A cell already trained costs a search
  nothing and teaches nothing new, and once the policy has found a good region many of its samples
  are cells already queried: at the defaults with ``unique=0``, 500 NAS-Bench-201 queries took 976 /
  1,450 / 1,091 proposals on average (CIFAR-10 / CIFAR-100 / ImageNet16-120, 40 seeds) and 2-4x the
  time, for the same best values. ``unique=0`` samples the policy as it is (the ENAS search does: its
  children repeat).

The update uses the told genotype's own log-probability, so the state is a function of the records
told: a resumed search replays them into a fresh controller. The defaults (``lr`` 0.01, ENAS's
``baseline_decay`` 0.99, ``entropy_weight`` 0.3, ENAS's temperature 5 and tanh constant 2.5, Adam
with ENAS's ``beta1`` 0) were tuned on the NAS-Bench-201 table, the same for its three columns
(docs/bench.md, "REINFORCE").
"""

from __future__ import annotations

import math

import numpy as np

from nasengine.algorithms.base import Algorithm, Proposal, Record
from nasengine.algorithms.controller import Adam, Controller, Tape
from nasengine.algorithms.memory import Memory
from nasengine.errors import NasError
from nasengine.spaces.base import Space

TAPES = 16  # forward passes kept from the latest asks (each is a few hundred kB)


class Reinforce(Algorithm):
    name = "reinforce"

    def __init__(self, space: Space, seed: int = 0, lr: float = 0.01, baseline_decay: float = 0.99,
                 entropy_weight: float = 0.3, temperature: float = 5.0, tanh_constant: float = 2.5,
                 hidden: int = 100, batch: int = 1, beta1: float = 0.0, unique: int = 100) -> None:
        super().__init__(space, seed)
        lr, baseline_decay, entropy_weight = float(lr), float(baseline_decay), float(entropy_weight)
        hidden, batch, unique = int(hidden), int(batch), int(unique)
        if not (lr > 0 and 0 <= baseline_decay < 1 and entropy_weight >= 0 and hidden >= 1 and batch >= 1
                and unique >= 0 and 0 <= float(beta1) < 1 and float(temperature) > 0 and float(tanh_constant) > 0):
            raise NasError("reinforce: need lr > 0, 0 <= baseline_decay < 1, entropy_weight >= 0, hidden >= 1, "
                           "batch >= 1, unique >= 0, 0 <= beta1 < 1, temperature > 0 and tanh_constant > 0")
        self.controller = Controller(space, seed, hidden, float(temperature), float(tanh_constant))
        if not self.controller.choices:
            raise NasError(f"reinforce: space {space.name} has no choices to learn")
        self.adam = Adam(self.controller.params, lr, beta1=float(beta1))
        self.decay, self.entropy_weight, self.batch = baseline_decay, entropy_weight, batch
        self.unique = unique
        self.memory = Memory(space)
        self.rewards = 0  # values told that moved the baseline
        self._mean = self._square = 0.0  # the moving averages, before bias correction
        self._grads: dict[str, np.ndarray] | None = None
        self._pending = 0  # records in _grads
        self._tapes: dict[tuple, Tape] = {}  # the last asks' tapes, reused by tell while the weights stand

    def _key(self, picks: dict) -> tuple:
        return tuple(picks.get(c.key) for c in self.controller.choices)

    def ask(self) -> Proposal:
        rng = self.rng()
        for _ in range(max(1, self.unique)):
            tape = self.controller.run(u=[rng.random() for _ in self.controller.choices])
            picks = self.controller.params_of(tape)
            g = self.space.from_params(picks)
            if not self.unique:
                break
            h = self.space.hash(g)
            if not self.memory.known(h):
                self.memory.propose(g, h)
                break
        self._tapes[self._key(picks)] = tape
        if len(self._tapes) > TAPES:
            del self._tapes[next(iter(self._tapes))]
        return Proposal(g, None, "controller")

    @property
    def baseline(self) -> float | None:
        return self._mean / (1.0 - self.decay ** self.rewards) if self.rewards else None

    def _advantage(self, value: float) -> float | None:
        """The normalised advantage of ``value`` (None for the first value told: it starts the baseline);
        then ``value`` joins the moving averages."""
        baseline = self.baseline
        self.rewards += 1
        self._mean = self.decay * self._mean + (1.0 - self.decay) * value
        if baseline is None:
            return None
        advantage = value - baseline
        self._square = self.decay * self._square + (1.0 - self.decay) * advantage ** 2
        scale = math.sqrt(self._square / (1.0 - self.decay ** (self.rewards - 1)))
        return advantage / scale if scale > 0 else 0.0

    def tell(self, record: Record) -> None:
        super().tell(record)
        if self.unique:
            self.memory.add(record)
        if record.value is None or not math.isfinite(record.value):
            return
        try:
            picks = self.space.to_params(record.genotype)
        except NasError:
            return
        key = self._key(picks)
        tape = self._tapes.get(key) or self.controller.run(picks=picks)
        if tape is None:
            return
        advantage = self._advantage(float(record.value))
        if advantage is None:
            return
        grads = self.controller.backward(tape, advantage, self.entropy_weight)
        if self._grads is None:
            self._grads = grads
        else:
            for k, g in grads.items():
                self._grads[k] += g
        self._pending += 1
        if self._pending >= self.batch:
            self.adam.step(self.controller.params, self._grads)
            self._grads, self._pending = None, 0
            self._tapes.clear()
