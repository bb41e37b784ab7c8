"""``nasengine search``, ``nasengine train`` and ``nasengine dashboard``."""

from __future__ import annotations

import argparse
import sys

from nasengine.cli.args import add_scaling_options, nonnegative_float, positive_float, positive_int, scaling_overrides
from nasengine.engine import DEFAULT_EPOCHS, DEFAULT_TRIALS, DEFAULT_WORKERS
from nasengine.errors import NasError
from nasengine.storage import DEFAULT_STORAGE


def key_value(text: str) -> tuple[str, object]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        parsed = value
    return key.strip(), parsed


# flag destination -> config key, for flags that override a --config file
_SEARCH_FLAGS = ("space", "algo", "dataset", "data_dir", "trials", "epochs", "storage", "study_name", "workers",
                 "gpus_per_trial", "cpus_per_trial", "ray_address", "seed", "executor", "preset", "max_failures",
                 "count_failures", "download", "diagrams", "artifact_dir", "retrain_epochs", "objective",
                 "target_latency_ms", "objectives", "results_dir", "memory_cap", "keep_weights")
# flag destination -> key of the config's latency: {...} settings
_LATENCY_FLAGS = {"latency_device": "device", "latency_threads": "threads", "latency_batch": "batch",
                  "latency_where": "where", "latency_mode": "mode", "latency_table": "table"}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "search", help="run (or resume) an architecture search",
        description="Search a space (cells or blocks): the algorithm proposes genotypes, each is trained as one "
                    "Ray Tune trial and recorded in an Optuna study. Run the same command again to resume. "
                    f"With no flags: a small evolution search on digits ({DEFAULT_TRIALS} candidates, "
                    "a few minutes on 2 "
                    "CPU cores).")
    p.add_argument("--config", metavar="STUDY", help="a study configuration (studies/NAME.yaml or a path); "
                   "flags override it")
    p.add_argument("--space", help="search space name or YAML path (default nasnet)")
    p.add_argument("--algo", help="search algorithm: evolution, random, local, reinforce, or a weight-sharing "
                   "search, darts or enas, which runs --trials seeds as one trial each (default evolution)")
    p.add_argument("--order", type=int, choices=(1, 2), help="DARTS: first- or second-order architecture gradient "
                   "(default 1)")
    p.add_argument("--retrain-epochs", type=positive_int, metavar="E",
                   help="weight sharing: train the best derived genotype from scratch for E epochs, as one more trial")
    p.add_argument("--algo-setting", dest="algo_setting", action="append", type=key_value, default=[],
                   metavar="KEY=VALUE", help="an algorithm setting, e.g. population=20 (repeatable)")
    p.add_argument("--dataset", help="digits, cifar10, cifar100, synthetic (default digits)")
    p.add_argument("--data-dir", help="where the dataset files are")
    p.add_argument("--download", action="store_true", default=None,
                   help="download a missing dataset (CIFAR) into --data-dir first")
    p.add_argument("--preset", help="network preset (default: the dataset's)")
    p.add_argument("--trials", type=positive_int, help="COMPLETE (trained) trials the study ends with "
                   f"(failed ones do not count; default {DEFAULT_TRIALS})")
    p.add_argument("--epochs", type=positive_int, help=f"training epochs per candidate (default {DEFAULT_EPOCHS})")
    p.add_argument("--seed", type=int, help="seed of the algorithm and of every candidate's training (default 0)")
    p.add_argument("--init", action="append", default=None, metavar="NAME[,NAME]|GENOTYPE",
                   help="published genotypes (e.g. amoebanet_a,nasnet_a) or a genotype text trained first "
                        "(repeatable)")
    p.add_argument("--storage", help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
    p.add_argument("--study-name", help="study name (default SPACE-ALGO-DATASET)")
    p.add_argument("--workers", type=positive_int, help=f"trials at once (default {DEFAULT_WORKERS})")
    p.add_argument("--cpus-per-trial", type=positive_float, help="CPUs per trial (default 1)")
    p.add_argument("--gpus-per-trial", type=nonnegative_float, help="GPUs per trial, fractional packs several "
                   "on a GPU (e.g. 0.25; default 0)")
    p.add_argument("--ray-address", help="join this Ray cluster (e.g. 10.0.0.1:6379 or auto) instead of "
                   "starting a local Ray")
    p.add_argument("--executor", choices=("ray", "inprocess"), help="ray (default) or inprocess (debugging)")
    p.add_argument("--max-failures", type=positive_int, help="stop after this many failed trials in a row "
                   "(default 10)")
    p.add_argument("--count-failures", action="store_true", default=None,
                   help="failed trials count against --trials too (default: only COMPLETE trials do)")
    p.add_argument("--diagrams", action=argparse.BooleanOptionalAction, default=None,
                   help="attach each trial's cell diagram to the study as an Optuna artifact (default on)")
    p.add_argument("--artifact-dir", help="where the artifacts go (default nasengine-artifacts/ beside a SQLite "
                   "file)")
    p.add_argument("--results-dir", metavar="DIR", help="keep Ray Tune's per-trial output in DIR (default: a "
                   "temporary folder, removed at the end)")
    p.add_argument("--memory-cap", type=positive_float, metavar="GB", help="a trial that allocates more than GB "
                   "on top of its worker's own memory fails with MemoryError (Ray executor; default no cap)")
    p.add_argument("--keep-weights", type=positive_int, metavar="K", help="keep the trained weights of the best K "
                   "trials only (default: of every COMPLETE trial, as artifacts: nasengine export --weights)")
    o = p.add_argument_group("objectives and latency")
    o.add_argument("--objective", choices=("accuracy", "reward"),
                   help="the trial's value: accuracy (default), or MnasNet's reward ACC * (LAT / T) ** -0.07 "
                        "with --target-latency-ms T")
    o.add_argument("--target-latency-ms", type=positive_float, metavar="T", help="the reward's target latency")
    o.add_argument("--objectives", metavar="accuracy,latency|params|flops",
                   help="2 or 3 objectives, accuracy first (maximised; the others minimised): a multi-objective "
                        "study whose values are these, e.g. accuracy,latency")
    o.add_argument("--latency-device", choices=("cpu", "cuda"), help="where latency is measured (default cpu)")
    o.add_argument("--latency-threads", type=positive_int, metavar="N", help="torch threads when measuring (1)")
    o.add_argument("--latency-batch", type=positive_int, metavar="B", help="batch size when measuring (1)")
    o.add_argument("--latency-where", choices=("driver", "worker"),
                   help="measure on the driver's machine before training (default) or in the trial after it")
    o.add_argument("--latency", dest="latency_mode", choices=("measured", "predicted"),
                   help="measured (default), or predicted from a per-layer table (--latency-table)")
    o.add_argument("--latency-table", metavar="FILE", help="the lookup table for --latency predicted "
                   "(made by nasengine latency)")
    p.set_defaults(func=cmd_search)

    t = subparsers.add_parser(
        "train", help="train one network and record it as a trial",
        description="The final retraining step: train one genotype (published, a genotype text, or a trial of "
                    "a study) with a preset, on train + validation, and report test accuracy. The run is "
                    "recorded as a single trial in a study.")
    src = t.add_mutually_exclusive_group(required=True)
    src.add_argument("--genotype", help="a published name (e.g. amoebanet_a) or a genotype text")
    src.add_argument("--trial", type=int, metavar="N", help="trial N of --study-name (-1: the best)")
    t.add_argument("--space", help="space of --genotype (default: the first that fits; a trial's own space)")
    t.add_argument("--preset", help="network preset (digits, cifar10, ...; default: the dataset's)")
    add_scaling_options(t)
    t.add_argument("--dataset", help="dataset (default: the study's, else digits)")
    t.add_argument("--data-dir", help="where the dataset files are")
    t.add_argument("--epochs", type=positive_int, default=10, help="training epochs (default 10)")
    t.add_argument("--seed", type=int, default=0, help="seed of the training (default 0)")
    t.add_argument("--holdout", action="store_true", help="train on the training split only and report "
                   "validation and test accuracy (default: train on train + validation, report test)")
    t.add_argument("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
    t.add_argument("--study-name", help="with --trial: the study to read the trial from")
    t.add_argument("--into", metavar="STUDY", help="the study to record the training in (default: "
                   "STUDY-final for --trial, train-SPACE-DATASET for --genotype)")
    t.set_defaults(func=cmd_train)

    d = subparsers.add_parser("dashboard", help="open optuna-dashboard on a storage",
                              description="Serve optuna-dashboard on the storage's studies (Ctrl-C to stop).")
    d.add_argument("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
    d.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)")
    d.add_argument("--port", type=positive_int, default=8080, help="port to serve on (default 8080)")
    d.add_argument("--artifact-dir", help="directory of trial artifacts (cell diagrams; default "
                   "nasengine-artifacts/ beside a SQLite file, when there)")
    d.set_defaults(func=cmd_dashboard)


def config_from_args(args) -> SearchConfig:  # noqa: F821
    from nasengine.engine import config_from_mapping, load_config_file

    values = load_config_file(args.config) if args.config else {}
    source = args.config or "configuration"
    cfg = config_from_mapping(values, source)
    flags = {key: getattr(args, key) for key in _SEARCH_FLAGS if getattr(args, key, None) is not None}
    if args.init is not None:
        from nasengine.engine import split_init

        flags["init"] = [name for value in args.init for name in split_init(value)]
    latency = {key: getattr(args, dest) for dest, key in _LATENCY_FLAGS.items()
               if getattr(args, dest, None) is not None}
    if latency:
        flags["latency"] = {**cfg.latency, **latency}
    if args.algo_setting or args.order is not None:
        order = {} if args.order is None else {"order": args.order}
        flags["algo_settings"] = {**cfg.algo_settings, **dict(args.algo_setting), **order}
    return config_from_mapping(flags, "command line", base=cfg)


def cmd_search(args) -> int:
    from nasengine.engine import run_search, summary

    cfg = config_from_args(args)
    result = run_search(cfg, stream=sys.stderr)
    print(summary(result))
    return 0


def cmd_train(args) -> int:
    from nasengine.engine import train_one
    from nasengine.spaces.cell import load_space
    from nasengine.zoo.resolve import resolve_text, resolve_trial, trial_network

    source = None
    network = None
    dataset = args.dataset
    if args.trial is not None:
        r = resolve_trial(args.storage, args.study_name, None if args.trial < 0 else args.trial, args.space)
        space_name, attrs, source = r.space, r.study_attrs, {"study": r.study, "trial": r.trial.number}
        text = load_space(space_name).format(r.genotype)
        config = attrs.get("config") or {}
        stored_dataset = config.get("dataset") or attrs.get("dataset")
        dataset = dataset or stored_dataset or "digits"
        if args.preset is None and dataset == stored_dataset:
            network = trial_network(attrs, r.trial)  # retrain exactly the searched network unless a preset is asked for
        into = args.into or f"{r.study}-final"
    else:
        if args.study_name and not args.into:
            args.into = args.study_name
        r = resolve_text(args.genotype, args.space)  # a published cell: its paper's space, or the first it fits
        space = load_space(r.space)
        text = space.format(space.validate(r.genotype))
        space_name = r.space
        dataset = dataset or "digits"
        into = args.into
    network = _scaled_network(args, r, space_name, dataset, network)
    out = train_one(text, space_name=space_name, dataset=dataset, epochs=args.epochs, preset=args.preset,
                    data_dir=args.data_dir, seed=args.seed, storage=args.storage, study_name=into,
                    network_kwargs=network, holdout=args.holdout, source=source, stream=sys.stderr)
    print(f"storage:   {args.storage}")
    print(f"study:     {out['study_name']} (trial #{out['number']})")
    if args.holdout:
        print(f"validation accuracy {out['val_acc']:.4f}; test accuracy {out['test_acc']:.4f}")
    else:
        print(f"test accuracy {out['test_acc']:.4f} (trained on train + validation, {args.epochs} epochs)")
    if out.get("params") is not None:
        print(f"params {out['params']:,}; flops {out.get('flops', 0):,}; {out.get('train_seconds', 0):.1f}s")
    return 0


def _scaled_network(args, r, space_name: str, dataset: str, network: dict | None) -> dict | None:
    """The network settings with ``--width/--depth/--resolution``; a published block network (whose
    settings are part of what it is: EfficientNet-B1..B7 are B0 scaled) at its own settings."""
    from nasengine.data import dataset_shape
    from nasengine.zoo.blocks import BLOCK_NETWORKS
    from nasengine.zoo.presets import network_settings, published_settings

    scaling = {k: v for k, v in scaling_overrides(args).items() if v is not None}
    if network is None and r.published in BLOCK_NETWORKS:
        return published_settings(r.published, args.preset or "digits", dataset_shape(dataset), **scaling)
    if not scaling:
        return network
    if network is None:
        return network_settings(space_name, args.preset or "digits", dataset_shape(dataset), **scaling)
    return {**network, **scaling}


def cmd_dashboard(args) -> int:
    from pathlib import Path

    from nasengine.storage import connect, default_artifact_dir, display_url, serve_dashboard, study_names

    storage = connect(args.storage, create=False)  # a missing storage: one-line error, nothing created
    names = study_names(storage)
    artifact_dir = Path(args.artifact_dir) if args.artifact_dir else default_artifact_dir(args.storage)
    if args.artifact_dir and not artifact_dir.is_dir():
        raise NasError(f"artifact directory {args.artifact_dir!r} does not exist")
    artifacts = f"; artifacts in {artifact_dir}" if artifact_dir.is_dir() else ""
    print(f"optuna-dashboard on {display_url(args.storage)} ({len(names)} studies{artifacts}): "
          f"http://{args.host}:{args.port}/  (Ctrl-C to stop)", flush=True)
    try:
        serve_dashboard(storage, args.host, args.port, artifact_dir if artifact_dir.is_dir() else None)
    except OSError as e:
        raise NasError(f"cannot serve on {args.host}:{args.port}: {e.strerror or e}") from None
    return 0
