"""Seeing results: ``nasengine show`` (a study's best trials, configuration and progress),
``nasengine studies`` (the studies in a storage), ``nasengine draw`` (a genotype's cells as a
diagram) and ``nasengine plot`` (a study's search plots).

Reading never writes: storages are opened through ``nasengine.storage.connect(url, create=False)``
and ``nasengine.storage.open_study``, which check that an SQLite file exists and already holds
Optuna's tables before Optuna opens it (SQLAlchemy would create an empty file, Optuna its tables),
and never create a study. Optuna, matplotlib and the drawing code are imported inside the commands
so ``nasengine --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from nasengine.cli.args import add_scaling_options, nonnegative_int, positive_int, scaling_overrides
from nasengine.errors import NasError, first_line
from nasengine.progress import duration, human
from nasengine.storage import DEFAULT_STORAGE

STATES = ("COMPLETE", "RUNNING", "WAITING", "FAIL", "PRUNED")


# ---- formatting ------------------------------------------------------------------------------------
def value_text(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, (int, float)) and not isinstance(v, bool) else "-"


def table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    """A plain text table; columns in ``right`` are right-aligned."""
    right = right or set()
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        padded = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


# ---- reading a study ---------------------------------------------------------------------------------
def overview(storage: Any, study_id: int, study_name: str, user_attrs: dict, maximize: bool = True,
             top: int = 10) -> dict[str, Any]:
    """Counts by state, best trial, timing and configuration of a study, and its ``top`` best trials
    (FrozenTrials under ``"top"``), as plain data.

    One SQL query for every trial's number, state and value (``nasengine.storage.read_history``), then
    the storage API for the few trials shown in full: a 10,000-trial study reads in about a second,
    where ``study.get_trials()`` takes tens of seconds.
    """
    from nasengine.storage import read_history

    rows = read_history(storage, study_id, states=STATES)
    counts = {s: 0 for s in STATES}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    complete = [r for r in rows if r.state == "COMPLETE" and isinstance(r.value, (int, float))
                and not math.isnan(r.value)]
    ranked = sorted(complete, key=lambda r: (-r.value if maximize else r.value, r.number))
    top_trials = [storage.get_trial(r.trial_id) for r in ranked[:top]]
    first = min(rows, key=lambda r: r.number, default=None)
    finished = [r for r in rows if r.state in ("COMPLETE", "FAIL", "PRUNED")]  # read_history: in finishing order
    started = storage.get_trial(first.trial_id).datetime_start if first else None
    last = storage.get_trial(finished[-1].trial_id).datetime_complete if finished else None
    failures = [r for r in rows if r.state == "FAIL"]
    last_failure = None
    if failures:
        t = storage.get_trial(max(failures, key=lambda r: r.number).trial_id)
        reason = t.user_attrs.get("error") or t.system_attrs.get("fail_reason")
        reason = first_line(str(reason)) or None if reason else None
        last_failure = {"number": t.number, "reason": reason}
    return {
        "study": study_name,
        "direction": "maximize" if maximize else "minimize",
        "space": user_attrs.get("space"), "algo": user_attrs.get("algo"), "dataset": user_attrs.get("dataset"),
        "config": user_attrs.get("config"), "network": user_attrs.get("network"),
        "counts": counts, "total": len(rows),
        "best": {"number": ranked[0].number, "value": ranked[0].value} if ranked else None,
        "started": started.isoformat(sep=" ", timespec="seconds") if started else None,
        "last_finished": last.isoformat(sep=" ", timespec="seconds") if last else None,
        "wall_seconds": (last - started).total_seconds() if started and last else None,
        "last_failure": last_failure,
        "top": top_trials,
    }


def study_overview(study: Any, top: int = 10) -> dict[str, Any]:
    """``overview`` of an ``optuna.Study``."""
    from nasengine.storage import study_id_of, study_storage

    return overview(study_storage(study), study_id_of(study), study.study_name, study.user_attrs,
                    study.directions[0].name == "MAXIMIZE", top)


def _value(t: Any) -> float | None:
    return t.values[0] if t.values else None


def trial_row(t: Any) -> dict[str, Any]:
    a = t.user_attrs
    return {"number": t.number, "value": _value(t), "accuracy": a.get("accuracy"), "params": a.get("params"),
            "flops": a.get("flops"),
            "latency_ms": a.get("latency_ms"), "train_seconds": a.get("train_seconds"), "hash": a.get("hash"),
            "genotype": a.get("genotype"), "parent": a.get("parent"), "seed": a.get("seed")}


# objective -> the user attr that holds it
_ATTR = {"accuracy": "accuracy", "latency": "latency_ms", "params": "params", "flops": "flops"}


def objective_names(user_attrs: dict, n_values: int) -> list[str]:
    """The study's objectives (user attr ``objectives``; a study from before it: ``accuracy``)."""
    names = user_attrs.get("objectives")
    if isinstance(names, list) and len(names) == n_values:
        return [str(n) for n in names]
    return ["accuracy"] if n_values == 1 else [f"value {i}" for i in range(n_values)]


def front(storage: Any, study_id: int, names: list[str], maximize: list[bool]) -> dict[str, Any] | None:
    """The study's Pareto front among its COMPLETE trials: of its values for a multi-objective study, of
    accuracy against latency for a study whose trials record ``latency_ms``; None for neither.

    ``{"objectives": [...], "of": trials compared, "trials": rows}``, the rows (number, accuracy,
    latency_ms, params, flops) in increasing order of the first cost. Narrow reads: one query for the
    values, one for the attrs."""
    from nasengine.core.pareto import pareto_front
    from nasengine.storage import read_history, read_user_attrs, read_values

    numbers = [r.number for r in read_history(storage, study_id, states=("COMPLETE",))]
    attrs = read_user_attrs(storage, study_id, tuple(_ATTR.values()))
    values = read_values(storage, study_id)

    def number(x: Any) -> float | None:
        ok = isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
        return float(x) if ok else None

    def row(n: int) -> dict[str, Any]:
        a = attrs.get(n, {})
        accuracy = a.get("accuracy", values[n][0] if names[0] == "accuracy" else None)
        return {"number": n, "accuracy": number(accuracy), "latency_ms": number(a.get("latency_ms")),
                "params": number(a.get("params")), "flops": number(a.get("flops"))}

    if len(names) > 1:
        objectives, up = names, maximize
        points = {n: values[n] for n in numbers if n in values and all(number(v) is not None for v in values[n])}
    else:
        objectives, up = ["accuracy", "latency"], [True, False]
        rows = {n: row(n) for n in numbers if n in values}
        points = {n: (r["accuracy"], r["latency_ms"]) for n, r in rows.items()
                  if r["accuracy"] is not None and r["latency_ms"] is not None}
        if not points:
            return None
    order = list(points)
    on = [order[i] for i in pareto_front([points[n] for n in order], up)]
    key = objectives[1] if len(objectives) > 1 else objectives[0]
    rows_on = sorted((row(n) for n in on), key=lambda r: (r[_ATTR.get(key, key)] or 0.0, r["number"]))
    return {"objectives": objectives, "of": len(points), "trials": rows_on}


def _config_lines(config: Any) -> list[str]:
    if isinstance(config, dict):
        return [f"  {k}: {json.dumps(v) if isinstance(v, (dict, list)) else v}" for k, v in config.items()]
    return [f"  {config}"] if config is not None else []


# ---- commands ----------------------------------------------------------------------------------------
def budget(config: Any) -> int | None:
    """The number of COMPLETE trials the search was asked for (config key ``trials``, and one more for a
    weight-sharing search's retraining), if recorded."""
    trials = config.get("trials") if isinstance(config, dict) else None
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        return None
    return trials + (1 if config.get("retrain_epochs") else 0)


def _ms(v: Any) -> str:
    return f"{v:.2f}ms" if isinstance(v, (int, float)) else "-"


def front_text(f: dict[str, Any]) -> list[str]:
    """The front's table: trial, accuracy, latency, params, FLOPs."""
    what = ", ".join(f["objectives"]) if len(f["objectives"]) > 2 else " against ".join(f["objectives"])
    cells = [[str(r["number"]), value_text(r["accuracy"]), _ms(r["latency_ms"]), human(r["params"]),
              human(r["flops"])] for r in f["trials"]]
    return [f"Pareto front of {what}: {len(f['trials'])} of {f['of']} complete trials",
            table(["trial", "accuracy", "latency", "params", "FLOPs"], cells, right={0, 1, 2, 3, 4})]


def show_text(ov: dict[str, Any], rows: list[dict[str, Any]], pareto: dict[str, Any] | None = None) -> str:
    """``nasengine show``'s report of an ``overview``, its top trials' ``trial_row``s and its ``front``."""
    c = ov["counts"]
    best = ov["best"]
    out = [f"study    {ov['study']}  ({ov['direction']})",
           f"space    {ov['space'] or '-'}   algo {ov['algo'] or '-'}   dataset {ov['dataset'] or '-'}",
           f"trials   {c['COMPLETE']} complete, {c['RUNNING']} running, {c['FAIL']} failed, {c['PRUNED']} pruned"
           + (f", {c['WAITING']} waiting" if c["WAITING"] else "") + f" ({ov['total']} in all)"]
    wanted = budget(ov["config"])
    if wanted:
        done = c["COMPLETE"]
        out.append(f"progress {done}/{wanted} complete trials of the budget ("
                   + ("done" if done >= wanted else f"{100 * done / wanted:.0f}%") + ")")
    out.append(f"best     {value_text(best['value'])} (trial {best['number']})" if best else "best     -")
    if ov["started"]:
        t = f"time     started {ov['started']}"
        if ov["last_finished"]:
            t += f", last finished {ov['last_finished']} ({duration(ov['wall_seconds'])} wall)"
        out.append(t)
    if ov["last_failure"]:
        f = ov["last_failure"]
        out.append(f"failed   last: trial {f['number']}" + (f": {f['reason']}" if f["reason"] else ""))
    if ov["config"] is not None:
        out += ["config"] + _config_lines(ov["config"])
    out.append("")
    if not rows:
        out.append("no complete trials yet")
        return "\n".join(out)
    reward = ov.get("objectives") == ["reward"]
    out.append(f"best {len(rows)} of {c['COMPLETE']} complete trials" + (" by reward" if reward else ""))
    headers = ["trial", *(["reward"] if reward else []), "accuracy", "params", "FLOPs", "latency", "train", "hash"]
    cells = [[str(r["number"]), *([value_text(r["value"]), value_text(r["accuracy"])] if reward
                                  else [value_text(r["value"])]),
              human(r["params"]), human(r["flops"]), _ms(r["latency_ms"]), duration(r["train_seconds"]),
              r["hash"] or "-"] for r in rows]
    out.append(table(headers, cells, right=set(range(len(headers) - 1))))
    if pareto is not None:
        out += [""] + front_text(pareto)
    return "\n".join(out)


def cmd_show(args: argparse.Namespace) -> int:
    from nasengine.storage import open_study, study_id_of, study_storage

    study = open_study(args.storage, args.study_name)
    ov = study_overview(study, top=args.top)
    directions = [d.name == "MAXIMIZE" for d in study.directions]
    ov["objectives"] = objective_names(study.user_attrs, len(directions))
    if study.user_attrs.get("target_latency_ms") is not None:
        ov["target_latency_ms"] = study.user_attrs["target_latency_ms"]
    if len(directions) > 1:
        ov["direction"] = ", ".join(f"{'maximize' if up else 'minimize'} {n}"
                                    for n, up in zip(ov["objectives"], directions))
    elif "target_latency_ms" in ov:
        ov["direction"] = f"maximize reward, target latency {ov['target_latency_ms']:g}ms"
    pareto = front(study_storage(study), study_id_of(study), ov["objectives"], directions)
    top = ov.pop("top")
    rows = [trial_row(t) for t in top]
    print(json.dumps({**ov, "top": rows, "front": pareto}, indent=2, default=str) if args.json
          else show_text(ov, rows, pareto))
    if args.png:
        from nasengine.progress import Progress
        from nasengine.viz import draw_genotype
        from nasengine.zoo.resolve import trial_genotype, trial_network

        out_dir = Path(args.png)
        with Progress(len(top), "cell diagrams", enabled=not args.json) as p:
            for t in top:
                path = out_dir / f"trial-{t.number}.png"
                draw_genotype(trial_genotype(t, ov["space"], validate=False), path,
                              title=f"{ov['study']}: trial {t.number}, accuracy {value_text(_value(t))}",
                              network=trial_network(study.user_attrs, t))
                p.update()
        print(f"wrote {len(top)} diagram(s) to {out_dir}", file=sys.stderr)
    return 0


def cmd_studies(args: argparse.Namespace) -> int:
    from nasengine.storage import connect, study_summaries

    storage = connect(args.storage, create=False)
    records = []
    for name, study_id, attrs, maximize in study_summaries(storage):
        ov = overview(storage, study_id, name, attrs, maximize, top=0)
        records.append({k: ov[k] for k in ("study", "space", "algo", "dataset", "counts", "total", "best", "started")})
    if args.json:
        print(json.dumps(records, indent=2, default=str))
        return 0
    if not records:
        print(f"no studies in {args.storage}")
        return 0
    headers = ["study", "space", "algo", "dataset", "complete", "running", "failed", "pruned", "best", "started"]
    rows = [[r["study"], r["space"] or "-", r["algo"] or "-", r["dataset"] or "-", str(r["counts"]["COMPLETE"]),
             str(r["counts"]["RUNNING"]), str(r["counts"]["FAIL"]), str(r["counts"]["PRUNED"]),
             value_text(r["best"]["value"]) if r["best"] else "-", r["started"] or "-"] for r in records]
    print(table(headers, rows, right={4, 5, 6, 7, 8}))
    return 0


def cmd_draw(args: argparse.Namespace) -> int:
    from nasengine.core.blocks import Blocks
    from nasengine.viz import draw_genotype
    from nasengine.zoo.blocks import BLOCK_NETWORKS
    from nasengine.zoo.presets import published_settings
    from nasengine.zoo.resolve import resolve_text, resolve_trial, trial_network

    if args.genotype and args.storage:
        raise NasError("give either --genotype or --storage/--study-name, not both")
    if args.genotype:
        if args.trial is not None:
            raise NasError("--trial goes with --storage/--study-name")
        r = resolve_text(args.genotype, args.space)  # checked as every command checks a genotype
        genotype, title = r.genotype, r.published
        network = published_settings(r.published, "imagenet") if r.published in BLOCK_NETWORKS else None
    elif args.storage and args.study_name:
        r = resolve_trial(args.storage, args.study_name, args.trial, args.space, validate=False)
        genotype, network = r.genotype, trial_network(r.study_attrs, r.trial)
        title = f"{r.study}: trial {r.trial.number}, accuracy {value_text(_value(r.trial))}"
    else:
        raise NasError("give --genotype NAME_OR_TEXT, or --storage URL --study-name NAME [--trial N]")
    scaling = {k: v for k, v in scaling_overrides(args).items() if v is not None}
    if scaling and not isinstance(genotype, Blocks):
        raise NasError("--width, --depth and --resolution scale block genotypes; a cell is drawn the same at any size")
    network = {**(network or {}), **scaling}
    path = draw_genotype(genotype, args.out, title=args.title or title, network=network, arrange=args.arrange)
    print(f"wrote {path}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from nasengine.storage import open_study
    from nasengine.viz import plot_study

    study = open_study(args.storage, args.study_name)
    print(f"reading the trials of {study.study_name} (Optuna reads about 300 a second)...", file=sys.stderr)
    directions = [d.name == "MAXIMIZE" for d in study.directions]
    for path in plot_study(study.study_name, directions[0], study.get_trials(deepcopy=False), args.out, top=args.top,
                           objectives=objective_names(study.user_attrs, len(directions)), directions=directions):
        print(f"wrote {path}")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("show", help="a study's best trials, configuration and progress",
                              description="The best trials of a study (accuracy, params, FLOPs, latency, training "
                                          "time, genotype hash) and its configuration and progress.")
    p.add_argument("--storage", default=DEFAULT_STORAGE, metavar="URL",
                   help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
    p.add_argument("--study-name", metavar="NAME", help="the study (default: the storage's only study)")
    p.add_argument("--top", type=positive_int, default=10, metavar="K", help="how many trials to list (10)")
    p.add_argument("--png", metavar="DIR", help="also draw the cells of the listed trials into DIR/trial-N.png")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=cmd_show)

    p = subparsers.add_parser("studies", help="the studies in a storage",
                              description="The studies in a storage with their space, algorithm, trial counts "
                                          "and best value.")
    p.add_argument("--storage", default=DEFAULT_STORAGE, metavar="URL",
                   help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_studies)

    p = subparsers.add_parser("draw", help="draw a genotype's cells as a diagram",
                              description="Draw a genotype's cells (normal and reduction side by side) as a "
                                          "PNG (or .svg/.pdf): a published name (nasnet_a, darts_v2, ...), a "
                                          "genotype's text, or a trial of a study (the best by default).")
    p.add_argument("--genotype", metavar="NAME_OR_TEXT", help="a published genotype's name or a genotype's text")
    p.add_argument("--space", metavar="SPACE", help="read the text in this space's notation (and check it)")
    p.add_argument("--storage", metavar="URL", help="draw a trial of a study in this Optuna storage")
    p.add_argument("--study-name", metavar="NAME", help="with --storage: the study")
    p.add_argument("--trial", type=nonnegative_int, metavar="N", help="trial number (default: the best)")
    p.add_argument("--out", required=True, metavar="FILE.png", help="the diagram to write (.png, .svg or .pdf)")
    p.add_argument("--title", help="the diagram's title")
    add_scaling_options(p)
    p.add_argument("--arrange", choices=("auto", "row", "column"), default="auto",
                   help="cells side by side (row), stacked (column), or auto: a row unless the cells are very deep")
    p.set_defaults(func=cmd_draw)

    p = subparsers.add_parser("plot", help="a study's search plots as PNG files",
                              description="Write best_so_far.png, accuracy_vs_params.png, accuracy_vs_flops.png, "
                                          "accuracy_vs_latency.png (where recorded) and curves.png for a study.")
    p.add_argument("--storage", default=DEFAULT_STORAGE, metavar="URL",
                   help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
    p.add_argument("--study-name", metavar="NAME", help="the study (default: the storage's only study)")
    p.add_argument("--out", required=True, metavar="DIR", help="the folder the PNG files go in")
    p.add_argument("--top", type=positive_int, default=10, metavar="K", help="learning curves of the best K (10)")
    p.set_defaults(func=cmd_plot)
