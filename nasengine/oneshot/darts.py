"""DARTS: differentiable architecture search (Liu et al. 2019), first and second order, as one picklable
callable with the evaluator shape: ``DartsSearch(...)(genotype_text, seed, report) -> dict``.

The training split is cut in two halves: the supernet's weights train on the first, the architecture
weights (alphas) on the second. Every step (:class:`SearchStep`) is an alpha step then a weight step
on one batch of each half, as in quark0/darts ``train_search.py``:

- alpha step, Adam (lr 3e-4, betas (0.5, 0.999), weight decay 1e-3) on the gradient of the
  validation-half loss. First order: ``dL_val(w, a)/da``. Second order (the paper's eq. 7-8): the
  gradient of ``L_val(w', a)`` with the virtual step ``w' = w - xi * dL_train(w, a)/dw``, ``xi`` the
  weights' current learning rate::

      dL_val(w', a)/da - xi * (dL_train(w+, a)/da - dL_train(w-, a)/da) / (2 eps)

  with ``w+- = w +- eps * dL_val(w', a)/dw'`` and ``eps = r / ||dL_val(w', a)/dw'||``, r = 0.01 (the
  paper's appendix; setting ``hessian_r``). The difference quotient is exact only where the loss is
  smooth at that scale: ReLU and max-pool kinks within a weight step of norm r make it approximate
  (float64, a 4-channel supernet: at r = 0.01 the alpha gradient was off by 5.0 where it was at most
  1.5, at r = 1e-4 by 1e-7, at r = 1e-6 by 2e-9, against double backprop; tests/test_darts.py checks
  the formula at r = 1e-6). quark0/darts and
  khanrc/pt.darts put the momentum and weight decay terms into the virtual step too; this follows the
  paper's equation. (pt.darts also divides by ``2. * eps`` written as ``/ 2.*eps``, which multiplies
  by eps; not copied.)
- weight step, SGD (momentum 0.9, weight decay 3e-4, lr 0.025 cosine to 0.001 over the epochs), the
  gradient norm clipped at 5.

Passes whose gradient is needed for one side only run with the other side's parameters frozen, so
no pass computes a gradient it throws away. Every training-mode pass updates the batch norms'
running statistics (used when the supernet is evaluated).

After every epoch: the supernet's accuracy on the dataset's validation split (``report(epoch, acc)``),
the derived genotype (``supernet.derive``), its number of parameter-free ops, and the softmax alphas.

Collapse remedy (``remedy="darts+"``): DARTS+ (Liang et al. 2019, "DARTS+: Improved Differentiable
Architecture Search with Early Stopping", criterion 1): the search stops after the first epoch whose
derived normal cell has two or more skip connections, and returns that epoch's genotype.

Settings (``**settings``, defaults in ``DEFAULTS``): ``w_lr``, ``w_lr_min``, ``w_momentum``,
``w_weight_decay``, ``grad_clip``, ``alpha_lr``, ``alpha_beta1``, ``alpha_beta2``,
``alpha_weight_decay``, ``hessian_r``, ``fused`` (grouped mixed ops, :mod:`nasengine.oneshot.mixed_ops`),
``precision`` (``fp32`` or ``bf16``: bf16 autocast) and ``compile`` (``torch.compile`` of the supernet).
Those two apply on CUDA only and are ignored on the CPU (bf16 depthwise convs are slower there, and
compiling the supernet's graph had not finished one step of a 4-channel supernet after 15 minutes
on this project's 2-core machine); neither has been measured on a GPU yet (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from nasengine.errors import NasError, check_keys
from nasengine.oneshot.collapse import param_free

Report = Callable[[int, float], None]

DEFAULTS: dict[str, Any] = {
    "w_lr": 0.025, "w_lr_min": 0.001, "w_momentum": 0.9, "w_weight_decay": 3e-4, "grad_clip": 5.0,
    "alpha_lr": 3e-4, "alpha_beta1": 0.5, "alpha_beta2": 0.999, "alpha_weight_decay": 1e-3, "hessian_r": 0.01,
    "fused": True, "precision": "fp32", "compile": False,
}
REMEDIES = ("darts+",)
SKIP_OPS = ("skip_connect", "identity", "enas_identity")



def darts_plus_stops(genotype) -> bool:
    """DARTS+ criterion 1: the normal cell has two or more skip connections."""
    return sum(1 for node in genotype.normal.nodes for e in node if e.op in SKIP_OPS) >= 2


@contextlib.contextmanager
def frozen(params: list[nn.Parameter]) -> Iterator[None]:
    """``params`` without ``requires_grad`` inside the block: autograd skips their gradients."""
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


class SearchStep:
    """One DARTS step on a supernet: the alpha step then the weight step (see the module docstring)."""

    def __init__(self, net: nn.Module, order: int = 1, precision: str = "fp32", compile: bool = False,
                 **settings: Any):
        if order not in (1, 2):
            raise NasError(f"darts: order must be 1 or 2, got {order!r}")
        if precision not in ("fp32", "bf16"):
            raise NasError(f"darts: precision must be fp32 or bf16, got {precision!r}")
        s = {**DEFAULTS, **settings}
        self.net, self.order, self.clip, self.r = net, order, float(s["grad_clip"]), float(s["hessian_r"])
        on_cuda = next(net.parameters()).device.type == "cuda"
        self.model = torch.compile(net) if compile and on_cuda else net
        self.weights, self.alphas = net.weights(), net.arch_parameters()
        self.w_optim = torch.optim.SGD(self.weights, s["w_lr"], momentum=s["w_momentum"],
                                       weight_decay=s["w_weight_decay"], foreach=True)
        self.a_optim = torch.optim.Adam(self.alphas, s["alpha_lr"], betas=(s["alpha_beta1"], s["alpha_beta2"]),
                                        weight_decay=s["alpha_weight_decay"])
        self.bf16 = precision == "bf16" and on_cuda

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not self.bf16:
            return F.cross_entropy(self.model(x), y)
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            logits = self.model(x)
        return F.cross_entropy(logits.float(), y)

    def first_order(self, vx: torch.Tensor, vy: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``dL_val(w, a)/da``."""
        with frozen(self.weights):
            return torch.autograd.grad(self.loss(vx, vy), self.alphas)

    def second_order(self, tx: torch.Tensor, ty: torch.Tensor, vx: torch.Tensor, vy: torch.Tensor,
                     xi: float) -> tuple[torch.Tensor, ...]:
        """The unrolled alpha gradient with the finite-difference Hessian-vector product."""
        w = self.weights
        with frozen(self.alphas):
            g_train = torch.autograd.grad(self.loss(tx, ty), w)
        with torch.no_grad():
            saved = [p.detach().clone() for p in w]
            torch._foreach_add_(w, g_train, alpha=-xi)  # w' = w - xi * dL_train/dw
        grads = torch.autograd.grad(self.loss(vx, vy), self.alphas + w)
        d_alpha, d_w = grads[:len(self.alphas)], grads[len(self.alphas):]
        with torch.no_grad():
            eps = self.r / nn.utils.get_total_norm(d_w)
            step = torch._foreach_mul(d_w, eps)  # noqa: SLF001 - torch's multi-tensor op (its optimizers use it)
            torch._foreach_copy_(w, saved)
            torch._foreach_add_(w, step)  # w+
        with frozen(w):
            g_plus = torch.autograd.grad(self.loss(tx, ty), self.alphas)
        with torch.no_grad():
            torch._foreach_sub_(w, step)
            torch._foreach_sub_(w, step)  # w-
        with frozen(w):
            g_minus = torch.autograd.grad(self.loss(tx, ty), self.alphas)
        with torch.no_grad():
            torch._foreach_copy_(w, saved)
            scale = xi / (2 * eps)
            return tuple(da - scale * (gp - gm) for da, gp, gm in zip(d_alpha, g_plus, g_minus))

    def __call__(self, tx: torch.Tensor, ty: torch.Tensor, vx: torch.Tensor, vy: torch.Tensor,
                 lr: float) -> torch.Tensor:
        """One step at weight learning rate ``lr``; returns the training-half loss (detached)."""
        for group in self.w_optim.param_groups:
            group["lr"] = lr
        grads = self.first_order(vx, vy) if self.order == 1 else self.second_order(tx, ty, vx, vy, lr)
        for a, g in zip(self.alphas, grads):
            a.grad = g
        self.a_optim.step()
        self.w_optim.zero_grad(set_to_none=True)
        with frozen(self.alphas):
            loss = self.loss(tx, ty)
            loss.backward()
        nn.utils.clip_grad_norm_(self.weights, self.clip, foreach=True)
        self.w_optim.step()
        return loss.detach()


def cosine_lr(epoch: int, epochs: int, lr: float, lr_min: float) -> float:
    """The learning rate of ``epoch`` (from 0) of ``epochs``: cosine from ``lr`` to ``lr_min``
    (``CosineAnnealingLR(T_max=epochs, eta_min=lr_min)`` as quark0/darts steps it)."""
    return lr_min + (lr - lr_min) * (1 + math.cos(math.pi * epoch / epochs)) / 2


def alphas_png(history: dict[str, list], ops: tuple[str, ...], n_inputs: int) -> bytes:
    """PNG bytes of the softmax alphas per edge over the epochs (``nasengine.viz.plots.plot_alphas``)."""
    from nasengine.viz.plots import plot_alphas

    with tempfile.TemporaryDirectory() as tmp:
        path = plot_alphas(history, os.path.join(tmp, "alphas.png"), op_names=ops, softmax=False,
                           n_inputs=n_inputs)
        return path.read_bytes()


class DartsSearch:
    """Holds plain values only, so it pickles to a Ray worker; ``__call__`` runs one search.

    ``space``: a cell space with a zero op (``darts``, ``nasbench201``); ``layers``/``C``: the supernet
    (``supernet.Supernet``; for NAS-Bench-201 ``layers`` counts its 3N cells and 2 ResNet blocks, so
    8 gives N = 2); ``order``: 1 or 2; ``remedy``: None or ``"darts+"``; ``settings``: see the module
    docstring. The result: ``value`` (the last epoch's supernet validation accuracy), ``genotype``,
    ``curve``, ``derived`` (genotype text per epoch), ``param_free`` (per epoch), ``alphas`` (softmax
    rows per edge, per cell), ``ops``, ``params`` and ``flops`` of the derived network at the space's
    network settings for the dataset, ``train_seconds``, ``remedy_stop`` (the epoch DARTS+ stopped
    after, or None) and ``alphas_png`` (PNG bytes of the alphas per epoch).
    """

    def __init__(self, space: str, dataset: str = "digits", data_dir: str | None = None, epochs: int = 50,
                 order: int = 1, remedy: str | None = None, batch_size: int = 64, C: int = 16, layers: int = 8,
                 device: str = "auto", threads: int | None = None, **settings: Any):
        from nasengine.oneshot.supernet import check_space
        from nasengine.spaces.cell import load_space

        check_keys(settings, DEFAULTS, "setting", "darts")
        check_space(load_space(space))  # a space without a zero op: NasError now, not in every trial
        if order not in (1, 2):
            raise NasError(f"darts: order must be 1 or 2, got {order!r}")
        if settings.get("precision", "fp32") not in ("fp32", "bf16"):
            raise NasError(f"darts: precision must be fp32 or bf16, got {settings['precision']!r}")
        if remedy is not None and remedy not in REMEDIES:
            raise NasError(f"darts: unknown remedy {remedy!r} (known: {', '.join(REMEDIES)})")
        for name, value in (("epochs", epochs), ("batch_size", batch_size), ("C", C), ("layers", layers)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise NasError(f"darts: {name} must be a positive integer, got {value!r}")
        self.space, self.dataset = str(space), str(dataset)
        self.data_dir = None if data_dir is None else os.fspath(data_dir)
        self.epochs, self.order, self.remedy = epochs, order, remedy
        self.batch_size, self.C, self.layers = batch_size, C, layers
        self.device, self.threads = str(device), threads
        self.settings = {**DEFAULTS, **settings}

    def __repr__(self) -> str:
        return (f"DartsSearch(space={self.space!r}, dataset={self.dataset!r}, epochs={self.epochs}, "
                f"order={self.order}, remedy={self.remedy!r})")

    def __call__(self, genotype_text: str, seed: int, report: Report | None = None) -> dict[str, Any]:
        """Run the search with ``seed`` (``genotype_text`` is ignored: a search starts from none)."""
        from nasengine.data import load_dataset
        from nasengine.oneshot.supernet import Supernet
        from nasengine.spaces.cell import load_space
        from nasengine.training import resolve_device, seed_everything

        if self.threads:
            torch.set_num_threads(int(self.threads))
        device = resolve_device(self.device)
        space = load_space(self.space)
        data = load_dataset(self.dataset, data_dir=self.data_dir).to(device)
        seed_everything(int(seed))
        net = Supernet(space, data.num_classes, data.in_channels, self.C, self.layers).to(device)
        return self.search(net, space, data, int(seed), report)

    def search(self, net: nn.Module, space, data, seed: int, report: Report | None = None) -> dict[str, Any]:
        """The search on supernet ``net`` (``supernet.Supernet`` of ``space``, on ``data``'s device)."""
        from nasengine.data import augment, batches
        from nasengine.training import evaluate

        s = self.settings
        net.fused = bool(s["fused"])
        step = SearchStep(net, self.order, s["precision"], bool(s["compile"]),
                          **{k: v for k, v in s.items() if k not in ("fused", "precision", "compile")})
        half = len(data.train_y) // 2
        if half < 1:
            raise NasError(f"darts: the {data.name} training split is too small to halve")
        w_x, w_y = data.train_x[:half], data.train_y[:half]
        a_x, a_y = data.train_x[half:], data.train_y[half:]
        generator = torch.Generator(device="cpu").manual_seed(seed)

        curve, derived, free, history = [], [], [], {name: [] for name in space.cells}
        stopped = None
        start = time.perf_counter()
        for epoch in range(self.epochs):
            lr = cosine_lr(epoch, self.epochs, s["w_lr"], s["w_lr_min"])
            net.train()
            for (tx, ty), (vx, vy) in zip(batches(w_x, w_y, self.batch_size, True, generator),
                                          batches(a_x, a_y, self.batch_size, True, generator)):
                tx = augment(tx, data.crop_padding, data.flip, 0, generator)
                vx = augment(vx, data.crop_padding, data.flip, 0, generator)
                loss = step(tx, ty, vx, vy, lr)
            if not torch.isfinite(loss):
                raise NasError(f"darts: the training loss diverged in epoch {epoch + 1} ({float(loss)})")
            acc = evaluate(net, data.val_x, data.val_y, batch_size=256, amp=s["precision"] == "bf16",
                           channels_last=False)
            weights = net.softmax_alphas()
            genotype = net.genotype(space)
            curve.append(float(acc))
            derived.append(space.format(genotype))
            free.append(param_free(genotype))
            for name in space.cells:
                history[name].append(weights[name].tolist())
            if report is not None:
                report(epoch + 1, float(acc))
            if self.remedy == "darts+" and darts_plus_stops(genotype):
                stopped = epoch + 1
                break
        seconds = time.perf_counter() - start
        params, flops = _discrete_size(space, genotype, data)
        return {
            "value": curve[-1],
            "genotype": space.format(genotype),
            "curve": curve,
            "derived": derived,
            "param_free": free,
            "alphas": {name: history[name][-1] for name in space.cells},
            "ops": list(space.ops),
            "params": params,
            "flops": flops,
            "train_seconds": seconds,
            "remedy_stop": stopped,
            "alphas_png": alphas_png(history, space.ops, space.inputs),
        }


def _discrete_size(space, genotype, data) -> tuple[int, int]:
    """Parameters and multiply-adds of the derived network at the space's network settings for the
    dataset (what ``nasengine train`` builds)."""
    from nasengine.models import build_network, count_flops, count_params
    from nasengine.zoo import network_settings

    settings = network_settings(space, "digits", dataset_shape=data)
    skeleton = settings.pop("skeleton")
    model = build_network(genotype.to_data(), skeleton, **settings)
    return count_params(model), count_flops(model, data.input_shape)
