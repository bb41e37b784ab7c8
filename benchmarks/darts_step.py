"""Time of one DARTS search step (alpha step + weight step) on synthetic CIFAR-shaped batches.

Builds the ``darts`` space's supernet (8 cells, C=16, 3x32x32 inputs, 10 classes) twice from the same
seed and times ``nasengine.oneshot.darts.SearchStep`` on both:

- fast: the fused mixed ops (``nasengine.oneshot.mixed_ops``), ``--precision`` (bf16: CUDA autocast),
  ``--compile`` (``torch.compile`` of the supernet);
- eager: the same supernet computed edge by edge, fp32, no compile (quark0/darts's way);

and, with ``--reference PATH`` (a work tree of khanrc/pt.darts), that project's own step in the same run:
first order ``model.loss(val).backward()`` (quark0/darts ``_backward_step``), second order
``Architect.unrolled_backward``, then its weight step as in its ``search.py``. Only pt.darts's
``models/`` and ``architect.py`` are imported (its data utilities need torchvision).

Steps run interleaved (fast, eager, reference, fast, ...) so a busy machine slows all alike; each gets
``--warmup`` untimed steps first. Medians over ``--steps``. Peak memory: on CUDA
``torch.cuda.max_memory_allocated`` during the timed steps; on the CPU the growth of the peak resident
set of a child process that runs only that path (warm-up and timed steps) over its size before the
first step (Linux). Prints one JSON line::

    {"order", "batch", "device", "fast_ms", "eager_ms", "fast_peak_mb", "eager_peak_mb"[, "reference_ms",
     "reference_peak_mb"], "threads", "precision", "steps"}

    python benchmarks/darts_step.py --order 1 --batch 8 --device cpu --threads 2 --reference /tmp/ptdarts
    python benchmarks/darts_step.py --order 2 --batch 64 --device cuda --precision bf16 --compile
    python benchmarks/darts_step.py --kernels --threads 1    # the CPU kernels, one JSON line each
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
import torch.nn as nn

LR = 0.025


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _batch(args, generator: torch.Generator):
    def one():
        x = torch.randn(args.batch, 3, 32, 32, generator=generator)
        y = torch.randint(10, (args.batch,), generator=generator)
        return x.to(args.device), y.to(args.device)
    return one() + one()


def make_ours(args, fast: bool):
    """A step function of nasengine's supernet (fast or eager path)."""
    from nasengine.oneshot.darts import SearchStep
    from nasengine.oneshot.supernet import Supernet
    from nasengine.spaces.cell import load_space

    torch.manual_seed(0)
    net = Supernet(load_space("darts"), 10, 3, C=16, layers=8).to(args.device)
    net.fused = fast
    step = SearchStep(net, args.order, args.precision if fast else "fp32", args.compile and fast)
    net.train()
    return lambda tx, ty, vx, vy: step(tx, ty, vx, vy, LR)


def make_reference(args):
    """A step function of khanrc/pt.darts's search (see the module docstring)."""
    sys.path.insert(0, str(Path(args.reference).resolve()))
    from architect import Architect
    from models.search_cnn import SearchCNNController

    torch.manual_seed(0)
    criterion = nn.CrossEntropyLoss().to(args.device)
    model = SearchCNNController(3, 16, 10, 8, criterion, device_ids=[0]).to(args.device)
    w_optim = torch.optim.SGD(model.weights(), LR, momentum=0.9, weight_decay=3e-4)
    a_optim = torch.optim.Adam(model.alphas(), 3e-4, betas=(0.5, 0.999), weight_decay=1e-3)
    architect = Architect(model, 0.9, 3e-4)
    model.train()

    def step(tx, ty, vx, vy):
        a_optim.zero_grad()
        if args.order == 2:
            architect.unrolled_backward(tx, ty, vx, vy, LR, w_optim)
        else:
            model.loss(vx, vy).backward()
        a_optim.step()
        w_optim.zero_grad()
        loss = model.criterion(model(tx), ty)
        loss.backward()
        nn.utils.clip_grad_norm_(model.weights(), 5.0)
        w_optim.step()
        return loss.detach()
    return step


def _builder(args, which: str):
    return make_reference(args) if which == "reference" else make_ours(args, which == "fast")


def _status_mb(field: str) -> float:
    """``VmRSS`` / ``VmHWM`` of this process in MB (Linux)."""
    with open("/proc/self/status") as f:
        return int(re.search(rf"{field}:\s+(\d+)", f.read()).group(1)) / 1024


def _cpu_peak(args, which: str, queue) -> None:
    """Child process: growth of the peak resident set (MB) over warm-up and timed steps of one path
    (the peak is reset first: ``echo 5 > /proc/self/clear_refs``)."""
    torch.set_num_threads(args.threads)
    step = _builder(args, which)
    generator = torch.Generator().manual_seed(1)
    batches = [_batch(args, generator) for _ in range(args.warmup + args.steps)]
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _status_mb("VmRSS")
    for b in batches:
        step(*b)
    queue.put(_status_mb("VmHWM") - base)


def cpu_peaks(args, paths: list[str]) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    peaks = {}
    for which in paths:
        queue = ctx.Queue()
        proc = ctx.Process(target=_cpu_peak, args=(args, which, queue))
        proc.start()
        peaks[which] = queue.get()
        proc.join()
    return peaks


def kernels(args) -> None:
    """One JSON line per kernel of the fused path against its aten counterpart: forward and backward
    time (median microseconds) at DARTS search sizes (batch ``--batch``, 4 edges of 16 channels)."""
    import torch.nn.functional as F

    from nasengine.oneshot import mixed_ops

    def timed(fn, n: int = 25) -> float:
        times = []
        for _ in range(n):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return round(1e6 * statistics.median(times[3:]), 1)

    def fwd_bwd(op, x):
        def run():
            y = op(x)
            y.backward(torch.ones_like(y))
        return run

    B = args.batch
    warm = torch.randn(B, 64, 32, 32)
    for _ in range(50):  # the first convolutions of a process run slow
        F.conv2d(warm, torch.randn(64, 1, 3, 3), None, 1, 1, 1, 64)
    cases = []
    for C, size in ((64, 32), (128, 16)):
        x = torch.randn(B, C, size, size, requires_grad=True)
        for k, d, stride in ((3, 1, 1), (5, 1, 1), (3, 2, 1), (5, 2, 1), (5, 2, 2)):
            w = torch.randn(C, 1, k, k, requires_grad=True)
            pad = d * (k - 1) // 2
            cases.append((f"depthwise {k}x{k} dilation {d} stride {stride}", x,
                          lambda z, w=w, s=stride, p=pad, d=d: F.conv2d(z, w, None, s, p, d, z.shape[1]),
                          lambda z, w=w, s=stride, p=pad, d=d: mixed_ops.depthwise_conv(z, w, s, p, d)))
        bn = nn.BatchNorm2d(C, affine=False)
        cases.append(("batch norm (training, non-affine)", x, bn, lambda z, bn=bn: mixed_ops.batch_norm(z, [bn])))
    for C, size in ((16, 32), (32, 16)):
        x = torch.randn(B, C, size, size, requires_grad=True)
        for stride in (1, 2):
            for pool in (nn.MaxPool2d(3, stride, 1), nn.AvgPool2d(3, stride, 1, count_include_pad=False)):
                cases.append((f"{type(pool).__name__} 3x3 stride {stride}", x, pool,
                              lambda z, pool=pool: mixed_ops.pool(pool, z)))
    for name, x, native, ours in cases:
        print(json.dumps({"kernel": name, "shape": list(x.shape), "threads": args.threads,
                          "aten_us": timed(fwd_bwd(native, x)), "fused_path_us": timed(fwd_bwd(ours, x))}),
              flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--order", type=int, choices=(1, 2), default=1)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--compile", action="store_true", help="torch.compile the fast path's supernet")
    p.add_argument("--steps", type=int, default=5, help="timed steps per path")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per path first")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    p.add_argument("--reference", default=None, help="path of a khanrc/pt.darts work tree to time as well")
    p.add_argument("--no-peak", action="store_true", help="skip the peak memory measurement")
    p.add_argument("--kernels", action="store_true",
                   help="instead: time the fused path's CPU kernels against aten's (forward + backward)")
    args = p.parse_args(argv)
    if args.kernels:
        torch.set_num_threads(args.threads)
        kernels(args)
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available")
    torch.set_num_threads(args.threads)

    paths = ["fast", "eager"] + (["reference"] if args.reference else [])
    steps = {which: _builder(args, which) for which in paths}
    generator = torch.Generator().manual_seed(1)
    times: dict[str, list[float]] = {which: [] for which in paths}
    peaks: dict[str, float] = {}
    for which in paths:
        for _ in range(args.warmup):
            steps[which](*_batch(args, generator))
    _sync(args.device)
    for _ in range(args.steps):
        for which in paths:
            batch = _batch(args, generator)
            if args.device == "cuda":
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
            _sync(args.device)
            start = time.perf_counter()
            steps[which](*batch)
            _sync(args.device)
            times[which].append(time.perf_counter() - start)
            if args.device == "cuda":
                peak = (torch.cuda.max_memory_allocated() - base) / 2**20
                peaks[which] = max(peaks.get(which, 0.0), peak)
    if args.device == "cpu" and not args.no_peak:
        peaks = cpu_peaks(args, paths)
    out = {"order": args.order, "batch": args.batch, "device": args.device}
    for which in paths:
        out[f"{which}_ms"] = round(1000 * statistics.median(times[which]), 1)
    for which in paths:
        out[f"{which}_peak_mb"] = round(peaks[which], 1) if which in peaks else None
    out.update(threads=args.threads, precision=args.precision, compile=args.compile, steps=args.steps)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
