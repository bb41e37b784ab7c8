"""ENAS's LSTM controller in numpy: it samples a genotype one categorical choice at a time and learns
with REINFORCE (Pham et al. 2018, section 2.2 and 3.2; read in melodyguan/enas
``src/cifar10/micro_controller.py``).

The choices are the space's params (``param_choices``; a cell's concat excluded), in their order: in a
cell space, per cell and node, each edge's input (``in{j}``) and op (``op{j}``); in any other space
(a block space) every param is one categorical choice, drawn like an op. One LSTM step per choice,
carrying its state from cell to cell, as ENAS's controller does:

- an op is drawn from ``h @ w_soft + b_soft`` over the space's ``sample_ops``; the next step's input
  is the op's embedding. The columns of ``w_soft`` and rows of ``w_emb`` are a vocabulary of tokens: a
  cell space's ops, or a block space's (choice, value) pairs such as ``("kernel", 5)``, shared by all
  blocks as ENAS shares op embeddings across nodes; a choice's logits are its own tokens' columns;
- an input is drawn by pointer attention over the states the node may read:
  ``v . tanh(anchor_w1[s] + h @ w_attn_2)``, where ``anchor_w1[s] = h_s @ w_attn_1`` and ``h_s`` is
  the LSTM output of the step that made state ``s``; the next input is that state's anchor. In a
  space with input choices, each cell starts with one step per cell input (anchor zero) and each
  node ends with one more step whose output is the node's anchor, and the next node starts from the
  learned ``g_emb``. A space whose nodes read every earlier state (NAS-Bench-201) has no input choices
  and no anchor steps;
- logits pass through ``tanh_constant * tanh(logits / temperature)`` (ENAS: 2.5 and 5);
- where the space wants distinct inputs (DARTS) a node's later input choices exclude its earlier ones.

The loss of one sample is ``-advantage * log p(sample) - entropy_weight * entropy(sample)``; its
gradient is written by hand (``backward``; ``tests/test_reinforce.py`` checks it against a numerical
gradient). All weights start uniform in [-0.1, 0.1], as in ENAS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nasengine.spaces.base import Space

_KEY = re.compile(r"^(?P<cell>[^/]+)/node(?P<state>\d+)/(?P<kind>in|op)(?P<j>\d+)$")
PARAMS = ("w_lstm", "g_emb", "w_emb", "w_soft", "b_soft", "w_attn_1", "w_attn_2", "v_attn")


@dataclass(frozen=True)
class Choice:
    key: str  # the space's param name
    kind: str  # "in" (a pointer to a state) or "op" (a categorical over tokens)
    cell: str  # the cell, or "" in a block space
    state: int  # the node's state number, or the block's index
    values: tuple  # source states (in) or the values chosen (op: op names, or a block choice's values)
    tokens: tuple[int, ...] = ()  # op: each value's index in the controller's vocabulary


def choices_of(space: Space) -> tuple[list[Choice], tuple]:
    """The space's categorical choices in ``param_choices`` order (concat is derived, not chosen) and the
    vocabulary of op tokens: a cell space's ``sample_ops``; (choice name, value) pairs elsewhere."""
    out = []
    if space.kind == "cell":
        vocab: tuple = tuple(space.sample_ops)
        for key, values in space.param_choices().items():
            m = _KEY.match(key)
            if m is None:  # a cell's concat
                continue
            if m["kind"] == "in":
                out.append(Choice(key, "in", m["cell"], int(m["state"]), tuple(int(v) for v in values)))
            else:
                out.append(Choice(key, "op", m["cell"], int(m["state"]), vocab, tuple(range(len(vocab)))))
        return out, vocab
    tokens: dict[tuple, int] = {}
    for n, (key, values) in enumerate(space.param_choices().items()):
        name = key.rpartition("/")[2]
        ids = tuple(tokens.setdefault((name, v), len(tokens)) for v in values)
        out.append(Choice(key, "op", "", n, tuple(values), ids))
    return out, tuple(tokens)


@dataclass
class Tape:
    """One sample's forward pass, kept for its backward pass."""

    picks: list[Any] = field(default_factory=list)  # chosen value per choice
    steps: list[dict] = field(default_factory=list)  # LSTM steps: x source, gates, states
    heads: list[dict] = field(default_factory=list)  # one per choice: step, candidates, probs...
    log_prob: float = 0.0
    entropy: float = 0.0


class Controller:
    def __init__(self, space: Space, seed: int = 0, hidden: int = 100, temperature: float | None = 5.0,
                 tanh_constant: float | None = 2.5) -> None:
        self.choices, self.vocab = choices_of(space)
        self.pointer = any(c.kind == "in" for c in self.choices)  # only cell spaces have input choices
        self.distinct = self.pointer and space.distinct_inputs
        self.inputs = space.inputs if self.pointer else 0
        self.hidden, self.temperature, self.tanh_constant = hidden, temperature, tanh_constant
        rng = np.random.default_rng(seed)
        H, n_ops = hidden, len(self.vocab)
        shapes = {"w_lstm": (2 * H, 4 * H), "g_emb": (H,), "w_emb": (n_ops, H), "w_soft": (H, n_ops),
                  "b_soft": (n_ops,), "w_attn_1": (H, H), "w_attn_2": (H, H), "v_attn": (H,)}
        self.params = {k: rng.uniform(-0.1, 0.1, shapes[k]) for k in PARAMS}

    # ---- forward ---------------------------------------------------------------------------------
    def _step(self, tape: Tape, x: np.ndarray, source: tuple, h: np.ndarray, c: np.ndarray):
        H = self.hidden
        xh = np.concatenate([x, h])
        z = xh @ self.params["w_lstm"]
        i, f, o = (1.0 / (1.0 + np.exp(-z[:3 * H]))).reshape(3, H)
        g = np.tanh(z[3 * H:])
        c_new = i * g + f * c
        tc = np.tanh(c_new)
        h_new = o * tc
        tape.steps.append({"source": source, "xh": xh, "i": i, "f": f, "o": o, "g": g, "c_prev": c, "tc": tc,
                           "h": h_new})
        return h_new, c_new

    def _logits(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """ENAS's squashing; returns the logits and tanh(raw / T) (None without squashing)."""
        if self.temperature is not None:
            raw = raw / self.temperature
        if self.tanh_constant is None:
            return raw, None
        t = np.tanh(raw)
        return self.tanh_constant * t, t

    def run(self, picks: dict[str, Any] | None = None, u: list[float] | None = None) -> Tape | None:
        """Sample (``u``: one uniform number per choice) or score ``picks`` (a genotype's params).

        Returns None when ``picks`` holds a value the controller cannot choose.
        """
        P = self.params
        H = self.hidden
        tape = Tape()
        h, c = np.zeros(H), np.zeros(H)
        x, source = P["g_emb"], ("g",)
        cell = None
        anchor_step: dict[int, int] = {}  # state -> step whose output is its attention key
        anchor_x: dict[int, int | None] = {}  # state -> step whose output is its anchor (None: zeros)
        anchor_w1: dict[int, np.ndarray] = {}
        node = None
        taken: list[int] = []
        for n, choice in enumerate(self.choices):
            here = (choice.cell, choice.state)
            if self.pointer and here != node and node is not None:
                h, c = self._step(tape, x, source, h, c)  # the finished node's anchor
                anchor_step[node[1]] = anchor_x[node[1]] = len(tape.steps) - 1
                anchor_w1[node[1]] = h @ P["w_attn_1"]
                x, source = P["g_emb"], ("g",)
            if choice.cell != cell:
                cell = choice.cell
                anchor_step, anchor_x, anchor_w1 = {}, {}, {}
                if self.pointer:
                    for s in range(self.inputs):
                        h, c = self._step(tape, x, source, h, c)
                        anchor_step[s], anchor_x[s] = len(tape.steps) - 1, None
                        anchor_w1[s] = h @ P["w_attn_1"]
            if here != node:
                node, taken = here, []
            h, c = self._step(tape, x, source, h, c)
            step = len(tape.steps) - 1
            if choice.kind == "in":
                cands = [s for s in choice.values if not (self.distinct and s in taken)]
                keys = np.stack([anchor_w1[s] for s in cands])
                q = np.tanh(keys + h @ P["w_attn_2"])
                raw = q @ P["v_attn"]
                head = {"kind": "in", "cands": cands, "q": q, "key_steps": [anchor_step[s] for s in cands]}
            else:
                cands = list(choice.values)
                idx = list(choice.tokens)
                raw = h @ P["w_soft"][:, idx] + P["b_soft"][idx]
                head = {"kind": "op", "cands": cands, "tokens": choice.tokens}
            logits, t = self._logits(raw)
            z = logits - logits.max()
            p = np.exp(z)
            p /= p.sum()
            logp_all = z - np.log(np.exp(z).sum())
            if picks is None:
                a = min(int(np.searchsorted(np.cumsum(p), u[n] * p.sum(), side="right")), len(cands) - 1)
            else:
                value = picks.get(choice.key)
                if value not in cands:
                    return None
                a = cands.index(value)
            head.update(step=step, t=t, p=p, logp_all=logp_all, a=a)
            tape.heads.append(head)
            tape.picks.append(cands[a])
            tape.log_prob += float(logp_all[a])
            tape.entropy -= float(p @ logp_all)
            if choice.kind == "in":
                taken.append(cands[a])
                s = cands[a]
                x = np.zeros(H) if anchor_x[s] is None else tape.steps[anchor_x[s]]["h"]
                source = ("zero",) if anchor_x[s] is None else ("anchor", anchor_x[s])
            else:
                token = choice.tokens[a]
                x, source = P["w_emb"][token], ("emb", token)
        return tape

    def params_of(self, tape: Tape) -> dict[str, Any]:
        return {choice.key: value for choice, value in zip(self.choices, tape.picks)}

    # ---- backward --------------------------------------------------------------------------------
    def backward(self, tape: Tape, advantage: float, entropy_weight: float) -> dict[str, np.ndarray]:
        """Gradient of ``-advantage * log_prob - entropy_weight * entropy`` for the tape's sample.

        Weight gradients are sums of outer products; their factors are collected per weight and
        multiplied once at the end (one matmul instead of an outer product per step).
        """
        P = self.params
        H = self.hidden
        factors: dict[str, tuple[list, list]] = {k: ([], []) for k in ("w_lstm", "w_soft", "w_attn_1", "w_attn_2")}
        grads = {k: np.zeros_like(P[k]) for k in ("g_emb", "w_emb", "b_soft", "v_attn")}
        dh = np.zeros((len(tape.steps), H))
        heads_at = {head["step"]: head for head in tape.heads}
        dh_next, dc_next = np.zeros(H), np.zeros(H)
        for t in range(len(tape.steps) - 1, -1, -1):
            st = tape.steps[t]
            head = heads_at.get(t)
            if head is not None:
                p, logp = head["p"], head["logp_all"]
                onehot = np.zeros_like(p)
                onehot[head["a"]] = 1.0
                entropy = -float(p @ logp)
                draw = -advantage * (onehot - p) + entropy_weight * p * (logp + entropy)  # d loss / d logits
                if head["t"] is not None:
                    draw = draw * self.tanh_constant * (1.0 - head["t"] ** 2)
                if self.temperature is not None:
                    draw = draw / self.temperature
                if head["kind"] == "op":
                    full = np.zeros(len(self.vocab))  # zero on the tokens this choice cannot take
                    full[list(head["tokens"])] = draw
                    factors["w_soft"][0].append(st["h"])
                    factors["w_soft"][1].append(full)
                    grads["b_soft"] += full
                    dh[t] += P["w_soft"][:, list(head["tokens"])] @ draw
                else:
                    q = head["q"]
                    grads["v_attn"] += draw @ q
                    dpre = np.outer(draw, P["v_attn"]) * (1.0 - q ** 2)
                    dsum = dpre.sum(0)
                    factors["w_attn_2"][0].append(st["h"])
                    factors["w_attn_2"][1].append(dsum)
                    dh[t] += P["w_attn_2"] @ dsum
                    dh[head["key_steps"]] += dpre @ P["w_attn_1"].T  # a state appears once per head
                    factors["w_attn_1"][0].extend(tape.steps[s]["h"] for s in head["key_steps"])
                    factors["w_attn_1"][1].extend(dpre)
            dht = dh[t] + dh_next
            i, f, o, g, tc = st["i"], st["f"], st["o"], st["g"], st["tc"]
            dc = dc_next + dht * o * (1.0 - tc ** 2)
            dz = np.concatenate([dc * g * i * (1.0 - i), dc * st["c_prev"] * f * (1.0 - f),
                                 dht * tc * o * (1.0 - o), dc * i * (1.0 - g ** 2)])
            factors["w_lstm"][0].append(st["xh"])
            factors["w_lstm"][1].append(dz)
            dxh = P["w_lstm"] @ dz
            dx, dh_next = dxh[:H], dxh[H:]
            dc_next = dc * f
            kind = st["source"][0]
            if kind == "g":
                grads["g_emb"] += dx
            elif kind == "emb":
                grads["w_emb"][st["source"][1]] += dx
            elif kind == "anchor":
                dh[st["source"][1]] += dx
        for k, (left, right) in factors.items():
            grads[k] = np.array(left).T @ np.array(right) if left else np.zeros_like(P[k])
        return grads


class Adam:
    """Adam (Kingma & Ba 2015) over a dict of numpy arrays, updated in place."""

    def __init__(self, params: dict[str, np.ndarray], lr: float, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8) -> None:
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.steps = 0

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.steps += 1
        b1, b2 = self.beta1, self.beta2
        scale = self.lr * np.sqrt(1.0 - b2 ** self.steps) / (1.0 - b1 ** self.steps)
        for k, g in grads.items():
            m, v = self.m[k], self.v[k]
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * g * g
            params[k] -= scale * m / (np.sqrt(v) + self.eps)
