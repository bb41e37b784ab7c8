"""``nasengine latency``: a genotype's measured inference latency on a target (and its predicted one from a
per-layer table), random genotypes of a block space measured against the table, or a table built for a
whole block space."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

from nasengine.cli.args import add_scaling_options, nonnegative_int, positive_int, scaling_overrides
from nasengine.errors import NasError


def register(subparsers) -> None:
    from nasengine.zoo.presets import PRESETS

    p = subparsers.add_parser(
        "latency", help="measure (and predict) a network's inference latency on a target",
        description="Measure a genotype's inference latency: warm-up runs, then the median of timed runs in "
                    "inference mode on the target (device, threads, batch, input resolution). With --table, "
                    "also predict it from a per-layer latency table. --sample N measures and predicts N random "
                    "genotypes of a block space (one JSON line each); --build-table times every layer a block "
                    "space's networks can have.")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--genotype", metavar="NAME_OR_TEXT", help="a published genotype or genotype text")
    what.add_argument("--sample", type=positive_int, metavar="N", help="N random genotypes of --space")
    what.add_argument("--build-table", metavar="FILE", help="time every layer of --space's networks into FILE")
    p.add_argument("--space", help="search space (needed with --sample and --build-table; default for --genotype: "
                                   "inferred)")
    p.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
    p.add_argument("--preset", choices=PRESETS, help="network settings and input (default: imagenet for block "
                                                     "genotypes; needed for cell genotypes)")
    add_scaling_options(p)
    p.add_argument("--latency-device", choices=("cpu", "cuda"), default="cpu", help="device to time on (cpu)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    p.add_argument("--batch", type=positive_int, default=1, help="batch size (default 1)")
    p.add_argument("--warmup", type=nonnegative_int, help="untimed runs first (default: measure.WARMUP)")
    p.add_argument("--repeats", type=positive_int, help="timed runs, their median reported (default: "
                                                         "measure.REPEATS)")
    p.add_argument("--table", metavar="FILE", help="latency table to predict with, created or extended with the "
                                                   "layers it lacks (--sample: default latency-TARGET.json here)")
    p.add_argument("--calibrate", type=nonnegative_int, default=0, metavar="N",
                   help="fit a new table's scale and overhead on N measured random genotypes of the space "
                        "(other than --sample's; default 0: predict the layers' plain sum)")
    p.add_argument("--json", action="store_true", help="one JSON line per genotype")
    p.set_defaults(func=run_latency)


def _settings(args, genotype_text: str | None, space_name: str | None) -> tuple[Any, dict, str]:
    """(genotype, build_network settings, label) of --genotype (or, with ``genotype_text`` None, of the
    space alone: genotype None)."""
    from nasengine.spaces import load_space
    from nasengine.zoo.presets import network_settings, published_settings
    from nasengine.zoo.resolve import resolve_text

    g, published = None, None
    if genotype_text is not None:
        r = resolve_text(genotype_text, space_name)
        g, space_name, published = r.genotype, r.space, r.published
    if space_name is None:
        raise NasError("genotype fits no search space; name it with --space")
    space = load_space(space_name)
    preset = args.preset or ("imagenet" if space.kind == "blocks" else None)
    if preset is None:
        raise NasError("--preset is needed for a cell genotype (digits, cifar10, imagenet-mobile or nb201)")
    overrides = scaling_overrides(args)
    if published is not None and args.space is None:
        settings = published_settings(published, preset, **overrides)
    else:
        settings = network_settings(space, preset, **overrides)
    return g, settings, published or "genotype"


def _target(args, settings: dict):
    from nasengine.profiler import Target

    return Target(args.latency_device, args.threads, args.batch, settings["image_size"])


def _measure(g, settings: dict, target, args) -> float:
    from nasengine.profiler import measure_network
    from nasengine.profiler.measure import REPEATS, WARMUP

    warmup = WARMUP if args.warmup is None else args.warmup
    repeats = REPEATS if args.repeats is None else args.repeats
    return measure_network(g.to_data(), settings, target, warmup=warmup, repeats=repeats)


def _progress(what: str):
    """A progress line on a terminal (nothing in a log)."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        if done == total or done % 50 == 0:
            print(f"\r{what}: {done}/{total} layers", end="\n" if done == total else "", file=sys.stderr, flush=True)

    return show


def _table(path: Path, target, networks: list, calibrate=None):
    """The latency table at ``path`` (a new one if there is none) with the layers of ``networks``
    (``(genotype_data, settings)`` pairs) timed where it lacks them, and, if it is uncalibrated,
    ``calibrate(table)`` called; saved when changed."""
    from nasengine.profiler import LatencyTable

    table = LatencyTable.load(path, target) if path.exists() else LatencyTable(target)
    changed = table.fill_for(networks, progress=_progress(f"timing {path}")) > 0
    if calibrate is not None and not table.calibrated_on:
        changed = calibrate(table) or changed
    if changed:
        table.save(path)
    return table


def run_latency(args) -> int:
    if args.genotype is not None:
        return _one(args)
    if args.space is None:
        raise NasError(f"--{'sample' if args.sample else 'build-table'} needs --space (a block space)")
    if args.build_table is not None:
        return _build_table(args)
    return _sample(args)


def _one(args) -> int:
    g, settings, label = _settings(args, args.genotype, args.space)
    target = _target(args, settings)
    table = _table(Path(args.table), target, [(g.to_data(), settings)]) if args.table else None
    predicted = table.predict(g.to_data(), settings) if table else None
    measured = _measure(g, settings, target, args)
    if args.json:
        row = {"genotype": str(g), "measured_ms": measured}
        if table:
            row["predicted_ms"] = predicted
        print(json.dumps(row))
        return 0
    print(f"{label}: {measured:.2f} ms measured on {target}")
    if table:
        print(f"predicted: {predicted:.2f} ms ({len(table)} layers in {args.table})")
    return 0


def _table_path(args, target) -> Path:
    return Path(args.table or f"latency-{target.key}.json")


def _sample(args) -> int:
    from nasengine.spaces import load_space

    _, settings, _ = _settings(args, None, args.space)
    space = load_space(args.space)
    if space.kind != "blocks":
        raise NasError(f"space {space.name} is a cell space; --sample predicts block spaces' latency")
    target = _target(args, settings)
    rng = random.Random(args.seed)
    genotypes = [space.sample(rng) for _ in range(args.sample)]
    table = _table(_table_path(args, target), target, [(g.to_data(), settings) for g in genotypes],
                   lambda t: _calibrate(t, space, settings, target, args))
    for g in genotypes:
        measured = _measure(g, settings, target, args)
        row = {"genotype": str(g), "measured_ms": measured, "predicted_ms": table.predict(g.to_data(), settings)}
        print(json.dumps(row) if args.json else
              f"{row['measured_ms']:8.2f} ms measured {row['predicted_ms']:8.2f} ms predicted  {row['genotype']}",
              flush=True)
    return 0


def _build_table(args) -> int:
    from nasengine.profiler import LatencyTable, space_layer_specs
    from nasengine.spaces import load_space

    _, settings, _ = _settings(args, None, args.space)
    target = _target(args, settings)
    path = Path(args.build_table)
    table = LatencyTable.load(path, target) if path.exists() else LatencyTable(target)
    space = load_space(args.space)
    timed = table.fill(space_layer_specs(space, settings), progress=_progress(f"timing {path}"))
    _calibrate(table, space, settings, target, args)
    table.save(path)
    fit = f"; {table.scale:.3f} x layers + {table.overhead_ms:.2f} ms, fitted on {table.calibrated_on} networks"
    print(f"wrote {path}: {len(table)} layers ({timed} timed now) for {target}{fit if table.calibrated_on else ''}")
    return 0


def _calibrate(table, space, settings: dict, target, args) -> bool:
    """Fit the table's scale and overhead on ``--calibrate`` measured random genotypes of ``space`` (drawn
    apart from ``--sample``'s), timing their layers first where the table lacks them; False when
    ``--calibrate`` is 0."""
    if not args.calibrate:
        return False
    rng = random.Random(f"calibrate {args.seed}")
    networks = [space.sample(rng) for _ in range(args.calibrate)]
    table.fill_for([(g.to_data(), settings) for g in networks])
    measured = [_measure(g, settings, target, args) for g in networks]
    table.calibrate([(g.to_data(), settings) for g in networks], measured)
    return True
