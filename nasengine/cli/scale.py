"""``nasengine scale``: EfficientNet's compound scaling of a base network, and its report."""

from __future__ import annotations

import argparse

from nasengine.cli.args import nonnegative_float, positive_float, positive_int
from nasengine.storage import DEFAULT_STORAGE

# flag destination -> config key, for flags that override a --config file
_FLAGS = ("base", "space", "dataset", "data_dir", "download", "preset", "resolution", "epochs", "seed", "grid_step",
          "tolerance", "phis", "baselines", "latency", "workers", "cpus_per_trial", "gpus_per_trial", "ray_address",
          "executor", "storage", "max_failures", "report_dir")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "scale", help="compound scaling of a block network (EfficientNet's grid and phi scaling), with a report",
        description="EfficientNet's compound scaling on your data: grid-search the depth, width and resolution "
                    "coefficients (alpha, beta, gamma; alpha * beta^2 * gamma^2 ~= 2) at phi = 1, scale the base "
                    "with the best of them for phi = 1..K, optionally train the single-dimension baselines at "
                    "matched FLOPs, each network one trial of one Optuna study; then report accuracy against FLOPs "
                    "with a fitted power law per method. Run the same command again to resume.")
    p.add_argument("--config", metavar="FILE", help="a scaling configuration (studies/scale-*.yaml or a path); "
                   "flags override it")
    p.add_argument("--base", metavar="G", help="the base network: a built-in name (efficientnet_b0, mnasnet_a1, ...) "
                   "or a block genotype text")
    p.add_argument("--trial", type=int, metavar="N", help="the base is trial N of --study-name (-1: its best); "
                   "then --into names the scaling study")
    p.add_argument("--into", metavar="STUDY", help="with --trial: the scaling study (default STUDY-scale)")
    p.add_argument("--space", help="the space the base is read in (default: the one it fits)")
    p.add_argument("--dataset", help="digits, cifar10, cifar100, synthetic (default digits)")
    p.add_argument("--data-dir", help="where the dataset files are")
    p.add_argument("--download", action="store_true", default=None, help="download a missing dataset first")
    p.add_argument("--preset", help="network preset of the base (default: the dataset's)")
    p.add_argument("--resolution", type=positive_int, help="the base resolution (inputs are resized to it; "
                   "default the preset's)")
    p.add_argument("--epochs", type=positive_int, help="training epochs per network (default 2)")
    p.add_argument("--seed", type=int, help="seed of every network's training (default 0)")
    p.add_argument("--grid-step", type=positive_float, help="grid step of alpha, beta, gamma (default 0.05)")
    p.add_argument("--tolerance", type=nonnegative_float, help="|alpha * beta^2 * gamma^2 - 2| allowed (default 0.1)")
    p.add_argument("--phis", type=positive_int, metavar="K", help="scale for phi = 1..K (default 3)")
    p.add_argument("--baselines", action=argparse.BooleanOptionalAction, default=None,
                   help="also scale depth, width and resolution alone at the compound network's FLOPs")
    p.add_argument("--latency", action=argparse.BooleanOptionalAction, default=None,
                   help="measure each network's CPU latency (1 thread, batch 1) into user attr latency_ms")
    p.add_argument("--storage", help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
    p.add_argument("--study-name", help="the scaling study (default scale-BASE-DATASET); with --trial, the study "
                   "the base comes from")
    p.add_argument("--workers", type=positive_int, help="trials at once (default 2)")
    p.add_argument("--cpus-per-trial", type=positive_float, help="CPUs per trial (default 1)")
    p.add_argument("--gpus-per-trial", type=nonnegative_float, help="GPUs per trial (default 0)")
    p.add_argument("--ray-address", help="join this Ray cluster instead of starting a local Ray")
    p.add_argument("--executor", choices=("ray", "inprocess"), help="ray (default) or inprocess (debugging)")
    p.add_argument("--max-failures", type=positive_int, help="stop after this many failed trials in a row (default 10)")
    p.add_argument("--report", action="store_true", help="only report an existing scaling study")
    p.add_argument("--report-dir", metavar="DIR", help="where STUDY.csv and STUDY.png go (default .)")
    p.set_defaults(func=cmd_scale)


def scale_config_from_args(args):
    from nasengine.engine.scale_config import load_scale_file, scale_config

    cfg = scale_config(load_scale_file(args.config) if args.config else {}, args.config or "configuration")
    flags = {key: getattr(args, key) for key in _FLAGS if getattr(args, key, None) is not None}
    if args.trial is not None:
        flags.update(base=None, base_study=args.study_name or cfg.base_study, base_trial=args.trial,
                     study_name=args.into)
    elif args.study_name is not None:
        flags["study_name"] = args.study_name
    return scale_config(flags, "command line", base=cfg)


def cmd_scale(args) -> int:
    import sys

    from nasengine.engine.scale_driver import run_scale, scale_report, study_name, summary

    cfg = scale_config_from_args(args)
    if args.report:
        print(scale_report(cfg.storage, study_name(cfg), cfg.report_dir)[0])
        return 0
    print(summary(run_scale(cfg, stream=sys.stderr)))
    return 0
