"""Measured inference latency: warm-up runs, then the median of timed runs, in ``torch.inference_mode``
with the target's thread count (restored afterwards) and, on CUDA, a synchronize around each run.

The clock: wall time (``perf_counter``), except on one CPU thread, where the whole forward pass runs on
the calling thread (torch's intra-op pool of one runs inline) and its CPU time (``thread_time``) is the
latency the network has on a core of its own. Wall time there also counts the time the operating system
gave the core to other processes: on the project's 2-core machine with other jobs running (load 7), a
224x224 MnasNet-space network measured 28-53 ms of wall time in four back-to-back medians and 16.3-17.2
ms of CPU time, and its layers, each too short to be preempted often, summed to 16-19 ms either way.

The defaults (``WARMUP``, ``REPEATS``) come from the noise measured on the project's 2-core CPU machine
with other jobs running on it (``benchmarks/RESULTS.md``, "Latency predictor"): MnasNet-A1 at 224x224 on
one thread took 1.1-2x as long on its first run (allocation, oneDNN's kernel choice) and settled after
1-3 runs; the medians of consecutive 10-run windows spread over 20% of the 60-run median at load 12
(4 runnable jobs per core), where the spread comes from the load, not from too few runs.

Before timing, :func:`steady_allocator` stops glibc's malloc from handing big freed blocks back to the
kernel: by default it does (activation buffers of a few MB are mmapped and unmapped, or trimmed off the
heap's top, on every forward pass), so each pass of a 224x224 MobileNetV2-sized network paid about 3,500
page faults here, and a 1x1 conv, BN and ReLU at 112x112x96 took 23-32 ms in a row against 1.2 ms for
the three alone (1.4 ms in a row once the faults were gone). A deployed network does not pay them
(TFLite plans one arena up front; PyTorch's CPU performance guide recommends a caching allocator,
jemalloc or tcmalloc), and they made a layer's time depend on what ran around it. The setting is
process-wide and stays: the process keeps its peak heap instead of returning it.
"""

from __future__ import annotations

import ctypes
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn as nn

from nasengine.errors import NasError
from nasengine.models.network import build_network
from nasengine.profiler.target import Target

WARMUP = 3
REPEATS = 10


# glibc mallopt parameters (malloc.h); 32 MiB is M_MMAP_THRESHOLD's largest value on 64-bit systems
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_MAX_BYTES, _TRIM_NEVER = 32 << 20, (1 << 31) - 1
_allocator_set = False


def steady_allocator() -> None:
    """Once per process, on glibc: keep freed blocks up to 32 MiB in the heap for reuse (no mmap, no
    trimming), so repeated forward passes reuse their buffers instead of page-faulting them in again.
    Elsewhere (another libc, another OS) a no-op. The process keeps its peak heap; nothing else changes."""
    global _allocator_set
    if _allocator_set:
        return
    _allocator_set = True
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, _MMAP_MAX_BYTES)
    mallopt(_M_TRIM_THRESHOLD, _TRIM_NEVER)


@contextmanager
def target_threads(target: Target) -> Iterator[None]:
    """Run with the target's torch thread count, restoring the previous one afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(target.threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check_device(target: Target) -> torch.device:
    if target.device == "cuda" and not torch.cuda.is_available():
        raise NasError("latency device cuda asked for, but torch sees no CUDA device")
    return torch.device(target.device)


def single_cpu_thread(target: Target) -> bool:
    """One torch thread on the CPU: the network runs on the calling thread, so its latency is that
    thread's CPU time (see the module docstring)."""
    return target.device == "cpu" and target.threads == 1


def run_times(module: nn.Module, x: torch.Tensor, target: Target, warmup: int, repeats: int) -> list[float]:
    """Milliseconds of each of ``repeats`` forward passes of ``module`` on ``x`` after ``warmup`` untimed
    ones. The caller has put both on the target's device, set its threads and entered inference mode."""
    cuda = target.device == "cuda"
    clock = time.thread_time if single_cpu_thread(target) else time.perf_counter
    for _ in range(warmup):
        module(x)
    if cuda:
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = clock()
        module(x)
        if cuda:
            torch.cuda.synchronize()
        times.append((clock() - start) * 1000.0)
    return times


def check_runs(warmup: int, repeats: int) -> None:
    if warmup < 0 or repeats < 1:
        raise NasError(f"latency needs warm-up >= 0 and repeats >= 1, got {warmup} and {repeats}")


def measure_latency(model: nn.Module, target: Target, *, in_channels: int = 3, warmup: int = WARMUP,
                    repeats: int = REPEATS) -> float:
    """The median latency in milliseconds of ``model`` on a random ``(batch, in_channels, resolution,
    resolution)`` input on ``target``. The model is moved to the target's device and run in eval mode;
    its training flag is restored afterwards."""
    check_runs(warmup, repeats)
    device = check_device(target)
    steady_allocator()
    was_training = model.training
    model.to(device).eval()
    x = torch.randn(target.batch, in_channels, target.resolution, target.resolution,
                    generator=torch.Generator().manual_seed(0)).to(device)
    try:
        with target_threads(target), torch.inference_mode():
            times = run_times(model, x, target, warmup, repeats)
    finally:
        model.train(was_training)
    return statistics.median(times)


def measure_network(genotype_data: dict, settings: dict, target: Target, *, warmup: int = WARMUP,
                    repeats: int = REPEATS) -> float:
    """:func:`measure_latency` of ``build_network(genotype_data, **settings)`` (its input channels from
    ``settings``; its resolution must be the target's)."""
    if settings.get("image_size") != target.resolution:
        raise NasError(f"the network's resolution {settings.get('image_size')} is not the latency target's "
                       f"{target.resolution}")
    try:
        model = build_network(genotype_data, **settings)
    except ValueError as e:
        raise NasError(f"cannot build the network: {e}") from None
    return measure_latency(model, target, in_channels=settings["in_channels"], warmup=warmup, repeats=repeats)
