"""Training speed of a NASNet-like cell network: seconds per epoch and training images per second.

Runs ``nasengine.training.train`` on digits (1x8x8, real data) and on synthetic CIFAR-shaped data
(3x32x32) on the CPU and, when present, the GPU, and prints one line per case. Epoch times are the
trainer's ``epoch_seconds`` (training steps only, no evaluation); the first epoch (warm-up: lazy
imports, oneDNN / cuDNN autotuning) is left out of the median; "total" is the whole ``train`` call
(FLOP count, every epoch and every validation pass). Not a test.

    python benchmarks/train_speed.py                       # all cases on every device present
    python benchmarks/train_speed.py --cases digits --devices cpu --threads 1,2
    python benchmarks/train_speed.py --cases cifar --devices cuda --N 2 --F 32 --n-train 20000
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from nasengine.data import load_dataset
from nasengine.models.flops import count_params
from nasengine.training import TrainConfig, seed_everything, train, train_defaults


def _genotype(space_name: str, text: str | None):
    from nasengine.spaces.cell import load_space

    space = load_space(space_name)
    if text is None:
        from nasengine.zoo.published import get_published
        text = str(get_published("nasnet_a"))
    return space, space.parse(text)


def run_case(name, data, space, g, device, threads, args, macro_overrides):
    from nasengine.models.network import build_network

    if device == "cpu" and threads:
        torch.set_num_threads(threads)
    macro = {**space.network, **macro_overrides}
    skeleton = macro.pop("skeleton")
    seed_everything(0)
    model = build_network(g.to_data(), skeleton, data.num_classes, data.in_channels, data.image_size, **macro)
    settings = {**train_defaults(data.name), "epochs": args.epochs, "device": device, "seed": 0}
    if args.batch_size:
        settings["batch_size"] = args.batch_size
    cfg = TrainConfig(**settings)
    result = train(model, data, cfg)
    times = result.epoch_seconds
    per_epoch = statistics.median(times[1:] or times)  # the first epoch is warm-up
    images = (len(data.train_y) // min(cfg.batch_size, len(data.train_y))) * cfg.batch_size
    label = f"{device}" + (f"/{torch.get_num_threads()}t" if device == "cpu" else "")
    print(f"{name:<9} {label:<7} N={macro.get('N', '?')} F={macro.get('F', '?')} "
          f"params={count_params(model) / 1e3:7.1f}k "
          f"MACs={result.flops / 1e6:7.2f}M batch={cfg.batch_size:<4} first epoch {times[0]:6.2f}s  "
          f"epoch {per_epoch:6.2f}s  {images / per_epoch:8.0f} img/s  total {result.train_seconds:6.1f}s  "
          f"val acc {result.val_acc:.3f}", flush=True)
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cases", default="digits,cifar", help="comma list of: digits, cifar")
    p.add_argument("--devices", default=None, help="comma list of: cpu, cuda (default: cpu, plus cuda if present)")
    p.add_argument("--threads", default=None, help="comma list of CPU thread counts (default: torch's)")
    p.add_argument("--space", default="nasnet")
    p.add_argument("--genotype", default=None, help="genotype text (default: NASNet-A)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--N", type=int, default=None, help="cells per stage (default: the space's)")
    p.add_argument("--F", type=int, default=None, help="filters (default: the space's)")
    p.add_argument("--n-train", type=int, default=None,
                   help="synthetic CIFAR training images (default 2048 on CPU, 20000 on CUDA)")
    args = p.parse_args(argv)

    devices = args.devices.split(",") if args.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    threads = [int(t) for t in args.threads.split(",")] if args.threads else [None]
    space, g = _genotype(args.space, args.genotype)
    macro = {k: v for k, v in (("N", args.N), ("F", args.F)) if v is not None}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no CUDA"))
    print(f"genotype: {g}")
    digits = load_dataset("digits") if "digits" in args.cases else None
    for device in devices:
        for t in (threads if device == "cpu" else [None]):
            if digits is not None:
                run_case("digits", digits, space, g, device, t, args, macro)
            if "cifar" in args.cases:
                n = args.n_train or (20000 if device.startswith("cuda") else 2048)
                data = load_dataset("synthetic", num_classes=10, in_channels=3, image_size=32, n_train=n,
                                    n_val=max(64, n // 10), n_test=0)
                run_case("cifar-syn", data, space, g, device, t, args, macro)


if __name__ == "__main__":
    main()
