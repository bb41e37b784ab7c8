"""ENAS: efficient neural architecture search by parameter sharing (Pham et al. 2018), as one picklable
callable with the evaluator shape: ``EnasSearch(...)(genotype_text, seed, report) -> dict``.

Every epoch alternates the paper's two phases:

1. shared weights (``enas_supernet.EnasSupernet``): one pass over the training split, a child sampled
   from the controller for every batch, SGD with Nesterov momentum on the child's loss (ENAS micro
   search: lr 0.05 cosine to 0.0005, momentum 0.9, weight decay 1e-4, gradients clipped at 5);
2. the controller (``nasengine.algorithms.reinforce``, ENAS's LSTM in numpy): ``controller_samples``
   children, each rewarded with its accuracy on a random validation batch with the shared weights.

After every epoch ``candidates`` children are sampled and scored on the whole validation split with
the shared weights; the best is the epoch's derived genotype and ``report`` gets their mean accuracy.
The final genotype is the last epoch's derived one (the paper: sample several, keep the best by
shared-weight validation accuracy, retrain it from scratch).

Settings (``**settings``): ``lr``, ``min_lr``, ``momentum``, ``weight_decay``, ``grad_clip``,
``controller_samples`` (50), ``candidates`` (20), and the controller's own settings with a
``controller_`` prefix (``controller_lr``, ``controller_entropy_weight``...: ``Reinforce``'s, whose
defaults apply, except ``unique=0``).

Measured on digits (2-core CPU shared with other jobs): ``EnasSearch(epochs=1)`` 60-100 s; 10 epochs
330 s, the sampled children's mean shared-weight accuracy rising 0.14 -> 0.42 and the final genotype
0.65 (a shared weight is trained by about one batch in fifteen: ten epochs of 16 batches leave the
supernet far from trained, and its children favour parameter-free ops, 16 of 20).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from nasengine.errors import NasError, check_keys
from nasengine.oneshot.collapse import param_free

Report = Callable[[int, float], None]




_WEIGHTS = {"lr": 0.05, "min_lr": 0.0005, "momentum": 0.9, "weight_decay": 1e-4, "grad_clip": 5.0,
            "controller_samples": 50, "candidates": 20}


class EnasSearch:
    """Holds plain values only, so it pickles to a Ray worker; ``__call__`` runs the search."""

    def __init__(self, space: str = "enas", dataset: str = "digits", data_dir: str | None = None, epochs: int = 10,
                 batch_size: int = 64, C: int = 16, layers: int = 6, device: str = "auto", threads: int | None = None,
                 **settings: Any):
        self.space, self.dataset = str(space), str(dataset)
        self.data_dir = None if data_dir is None else str(data_dir)
        self.epochs, self.batch_size, self.C, self.layers = int(epochs), int(batch_size), int(C), int(layers)
        self.device, self.threads = str(device), threads
        check_keys([k for k in settings if not k.startswith("controller_")], [*_WEIGHTS, "controller_*"],
                   "setting", "enas")
        self.settings = {**_WEIGHTS, **settings}
        for key in ("epochs", "batch_size", "C", "layers"):
            if getattr(self, key) < 1:
                raise NasError(f"enas: {key} must be at least 1, got {getattr(self, key)}")
        if int(self.settings["controller_samples"]) < 0 or int(self.settings["candidates"]) < 1:
            raise NasError("enas: controller_samples must be >= 0 and candidates >= 1")
        self._check_space()

    def _check_space(self):
        from nasengine.spaces.cell import load_space

        space = load_space(self.space)
        if space.inputs != 2 or space.edges_per_node is None or space.zero_op is not None:
            raise NasError(f"enas: space {space.name} is not a two-input cell space with chosen inputs and no "
                           "zero op (use --space enas)")
        return space

    def __repr__(self) -> str:
        return (f"EnasSearch(space={self.space!r}, dataset={self.dataset!r}, epochs={self.epochs}, "
                f"C={self.C}, layers={self.layers})")

    def controller(self, space, seed: int):
        from nasengine.algorithms.reinforce import Reinforce

        # unique=0: children repeat (each batch trains one; a reward is one batch's accuracy)
        options = {"unique": 0, **{k[len("controller_"):]: v for k, v in self.settings.items()
                                   if k.startswith("controller_") and k != "controller_samples"}}
        try:
            return Reinforce(space, seed, **options)
        except TypeError as e:
            raise NasError(f"enas: controller setting: {e}") from None

    def __call__(self, genotype_text: str, seed: int, report: Report | None = None) -> dict[str, Any]:
        import torch
        import torch.nn.functional as F

        from nasengine.algorithms import Record
        from nasengine.data import augment, batches, load_dataset
        from nasengine.models.flops import count_flops, count_params
        from nasengine.models.network import build_network
        from nasengine.oneshot.enas_supernet import EnasSupernet
        from nasengine.training import CosineSchedule, resolve_device
        from nasengine.training.optim import param_groups

        started = time.perf_counter()
        if self.threads:
            torch.set_num_threads(int(self.threads))
        space = self._check_space()
        device = resolve_device(self.device)
        data = load_dataset(self.dataset, data_dir=self.data_dir).to(device)
        s = self.settings
        torch.manual_seed(seed)
        generator = torch.Generator(device="cpu").manual_seed(seed)
        net = EnasSupernet(space.sample_ops, space.nodes, data.num_classes, data.in_channels, self.C,
                           self.layers).to(device)
        optimizer = torch.optim.SGD(param_groups(net, float(s["weight_decay"])), lr=float(s["lr"]),
                                    momentum=float(s["momentum"]), nesterov=True)
        controller = self.controller(space, seed)
        schedule = CosineSchedule(float(s["lr"]), float(s["min_lr"]),
                                  self.epochs * max(1, len(data.train_y) // self.batch_size))

        def accuracy(g, x, y) -> float:
            net.eval()
            with torch.no_grad():
                correct = (net(x, g).argmax(1) == y).sum().item()
            net.train()
            return correct / len(y)

        curve, derived, free = [], [], []
        step = told = 0
        best = None
        for epoch in range(1, self.epochs + 1):
            net.train()
            for x, y in batches(data.train_x, data.train_y, self.batch_size, shuffle=True, generator=generator,
                                drop_last=True):  # batch norms need two examples
                for group in optimizer.param_groups:
                    group["lr"] = schedule(step)
                x = augment(x, data.crop_padding, data.flip, data.cutout, generator)
                child = controller.ask().genotype
                loss = F.cross_entropy(net(x, child), y)
                if not torch.isfinite(loss):
                    raise NasError(f"enas: the shared weights diverged (loss {loss.item()}) at epoch {epoch}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), float(s["grad_clip"]))
                optimizer.step()
                step += 1
            for _ in range(int(s["controller_samples"])):
                proposal = controller.ask()
                idx = torch.randint(len(data.val_y), (min(self.batch_size, len(data.val_y)),),
                                    generator=generator).to(device)
                reward = accuracy(proposal.genotype, data.val_x[idx], data.val_y[idx])
                controller.tell(Record(told, proposal.genotype, reward))
                told += 1
            scored: dict[str, tuple[float, Any]] = {}
            for _ in range(int(s["candidates"])):
                g = controller.ask().genotype
                h = space.hash(g)
                if h not in scored:
                    scored[h] = (accuracy(g, data.val_x, data.val_y), g)
            values = [v for v, _ in scored.values()]
            best = max(scored.values(), key=lambda vg: vg[0])
            curve.append(sum(values) / len(values))
            derived.append(space.format(best[1]))
            free.append(param_free(best[1]))
            if report is not None:
                report(epoch, curve[-1])
        value, final = best
        macro = dict(space.network)
        skeleton = macro.pop("skeleton")
        discrete = build_network(final.to_data(), skeleton, data.num_classes, data.in_channels, data.image_size,
                                 **macro)
        return {
            "value": float(value),
            "genotype": space.format(final),
            "curve": curve,
            "derived": derived,
            "param_free": free,
            "params": int(count_params(discrete)),
            "flops": int(count_flops(discrete, data.input_shape)),
            "train_seconds": time.perf_counter() - started,
        }
