"""The latency predictor's check (issue 18): a per-layer table for this machine's CPU (1 thread, batch 1,
224x224) predicts 50 random ``mnasnet`` genotypes; prints one JSON line with the Spearman rank
correlation and the median absolute relative error against their measured latency, and the seconds
predicting 1,000 candidates takes.

    python benchmarks/latency_predictor.py [--table FILE] [--n 50] [--rounds 3] [--calibrate 0]

The table covers the whole space (``space_layer_specs``); it is read from ``--table`` when the file
exists, else built and saved there. It predicts the plain sum of the layers' times; with ``--calibrate N``
its scale and overhead are first fitted on N measured genotypes of another seed than the checked ones
(``LatencyTable.calibrate``). Each network, calibration's and
checked, is measured with ``measure_latency`` (its default warm-up and repeats) in ``--rounds`` rounds
that go through all the networks in turn, so that a spell of load from other processes falls on every
network alike; its latency is the median of its rounds' medians.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

from scipy.stats import spearmanr

from nasengine.models.network import build_network
from nasengine.profiler import LatencyTable, Target, measure_latency, space_layer_specs
from nasengine.spaces import load_space
from nasengine.zoo.presets import network_settings


def measure_all(genotypes: list, settings: dict, target: Target, rounds: int) -> list[float]:
    models = [build_network(g.to_data(), **settings) for g in genotypes]
    runs: list[list[float]] = [[] for _ in models]
    for _ in range(rounds):
        for i, model in enumerate(models):
            runs[i].append(measure_latency(model, target, in_channels=settings["in_channels"]))
    return [statistics.median(r) for r in runs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", default="/tmp/latency-mnasnet-cpu-t1-b1-r224.json")
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calibrate", type=int, default=0, help="measured genotypes to fit the calibration on")
    parser.add_argument("--raw", help="also write each genotype's figures to this JSON file")
    args = parser.parse_args()

    target = Target("cpu", threads=1, batch=1, resolution=224)
    space = load_space("mnasnet")
    settings = network_settings(space, "imagenet")
    load_start = os.getloadavg()[0]
    path = Path(args.table)
    build_s = None
    if path.exists():
        table = LatencyTable.load(path, target)
    else:
        start = time.perf_counter()
        table = LatencyTable(target)
        table.fill(space_layer_specs(space, settings))
        build_s = time.perf_counter() - start
    rng = random.Random(args.seed)
    genotypes = [space.sample(rng) for _ in range(args.n)]
    rng = random.Random(args.seed + 1_000_003)
    calib = [space.sample(rng) for _ in range(args.calibrate)]
    # measured in the same rounds, so the calibration sees the load the checked networks see
    measured_all = measure_all(calib + genotypes, settings, target, args.rounds)
    measured = measured_all[len(calib):]
    if calib:
        table.calibrate([(g.to_data(), settings) for g in calib], measured_all[:len(calib)])
    table.save(path)
    predicted = [table.predict(g.to_data(), settings) for g in genotypes]
    errors = [abs(p - m) / m for p, m in zip(predicted, measured)]

    candidates = [space.sample(random.Random(args.seed + 7)) for _ in range(1000)]
    fresh = LatencyTable.load(path, target)  # no specs cached yet
    start = time.perf_counter()
    for g in candidates:
        fresh.predict(g.to_data(), settings)
    predict_s = time.perf_counter() - start

    result = {"spearman": round(float(spearmanr(predicted, measured).statistic), 4),
              "median_abs_err": round(statistics.median(errors), 4), "predict_1000_s": round(predict_s, 3),
              "n": args.n, "scale": round(table.scale, 4), "overhead_ms": round(table.overhead_ms, 3),
              "calibrated_on": table.calibrated_on,
              "layers": len(table), "table_build_s": None if build_s is None else round(build_s, 1),
              "measured_ms_median": round(statistics.median(measured), 2),
              "load_avg": [round(load_start, 2), round(os.getloadavg()[0], 2)]}
    if args.raw:
        Path(args.raw).write_text(json.dumps([{"genotype": str(g), "measured_ms": m, "predicted_ms": p}
                                              for g, m, p in zip(genotypes, measured, predicted)], indent=1))
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
