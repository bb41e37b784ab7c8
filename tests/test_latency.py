"""Latency: measurement, the per-layer table (JSON round trip, target check, prediction speed and sense)
and ``nasengine latency``, at tiny resolutions with few runs."""

from __future__ import annotations

import json
import random
import time

import pytest
import torch

from nasengine.cli.main import main
from nasengine.errors import NasError
from nasengine.models.network import build_network
from nasengine.profiler import LatencyTable, Target, measure_latency, measure_network, space_layer_specs
from nasengine.profiler.table import spec_key
from nasengine.spaces import load_space
from nasengine.zoo.presets import network_settings

RES = 32


@pytest.fixture(scope="module")
def space():
    return load_space("mnasnet")


@pytest.fixture(scope="module")
def settings(space):
    return network_settings(space, "imagenet", image_size=RES)


def test_target_key_and_data_round_trip():
    t = Target("cpu", threads=2, batch=4, resolution=96)
    assert t.key == "cpu-t2-b4-r96"
    assert Target.from_key(t.key) == t == Target.from_data(json.loads(json.dumps(t.to_data())))
    with pytest.raises(NasError, match="latency device"):
        Target("tpu")
    with pytest.raises(NasError, match="batch"):
        Target(batch=0)


def test_measure_returns_positive_ms_and_restores_threads_and_mode(space, settings):
    model = build_network(space.sample(random.Random(0)).to_data(), **settings)
    model.train()
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ms = measure_latency(model, Target(resolution=RES), warmup=1, repeats=3)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert isinstance(ms, float) and ms > 0
    assert model.training
    with pytest.raises(NasError, match="repeats"):
        measure_latency(model, Target(resolution=RES), repeats=0)
    g = space.sample(random.Random(0)).to_data()
    assert measure_network(g, settings, Target(resolution=RES), warmup=1, repeats=2) > 0
    with pytest.raises(NasError, match="resolution 32 is not the latency target's 64"):
        measure_network(g, settings, Target(resolution=64))
    if not torch.cuda.is_available():
        with pytest.raises(NasError, match="no CUDA device"):
            measure_network(g, settings, Target("cuda", resolution=RES))


def test_table_round_trips_refuses_another_target_and_predicts_near_measurement(space, settings, tmp_path):
    target = Target(resolution=RES)
    g = space.sample(random.Random(1)).to_data()
    table = LatencyTable(target)
    assert table.fill_for([(g, settings)], warmup=1, repeats=3, rounds=1) == len(table) > 0
    assert table.fill_for([(g, settings)]) == 0  # every layer timed already
    table.calibrate([(g, settings)], [table.layer_sum(g, settings) + 0.5])
    assert (table.scale, table.calibrated_on) == (1.0, 1) and table.overhead_ms == pytest.approx(0.5)

    path = tmp_path / "t.json"
    table.save(path)
    loaded = LatencyTable.load(path, target)
    assert loaded.times == table.times and loaded.target == target
    assert loaded.predict(g, settings) == pytest.approx(table.predict(g, settings))
    with pytest.raises(NasError, match="is for cpu-t1-b1-r32, not cpu-t1-b1-r64"):
        LatencyTable.load(path, Target(resolution=64))
    with pytest.raises(NasError, match="does not exist"):
        LatencyTable.load(tmp_path / "none.json")

    # uncalibrated, the layers' sum is within a loose factor of the whole network's measured latency
    model = build_network(g, **settings)
    measured = measure_latency(model, target, warmup=2, repeats=5)
    predicted = LatencyTable(target, table.times).predict(g, settings)
    assert measured / 5 < predicted < measured * 5

    other = space.sample(random.Random(2)).to_data()
    if table.missing(table.specs(other, settings)):
        with pytest.raises(NasError, match="has no time for layer"):
            table.predict(other, settings)
    with pytest.raises(NasError, match="resolution 64"):
        table.predict(g, {**settings, "image_size": 64})


def test_predicting_1000_candidates_takes_under_a_second(space, settings):
    table = LatencyTable(Target(resolution=RES))
    table.times = {spec_key(s): 1.0 for s in space_layer_specs(space, settings)}  # the whole space covered
    rng = random.Random(3)
    candidates = [space.sample(rng).to_data() for _ in range(1000)]
    start = time.perf_counter()
    predicted = [table.predict(g, settings) for g in candidates]
    assert time.perf_counter() - start < 1.0
    assert all(p == len(table.specs(g, settings)) for p, g in zip(predicted[:20], candidates))


def test_cli_sample_prints_json_lines_and_measures_a_genotype(tmp_path, capsys):
    table = tmp_path / "table.json"
    args = ["latency", "--space", "mnasnet", "--sample", "3", "--seed", "4", "--json", "--resolution", "16",
            "--warmup", "1", "--repeats", "2", "--calibrate", "2", "--table", str(table)]
    assert main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    space = load_space("mnasnet")
    for line in lines:
        row = json.loads(line)
        assert set(row) == {"genotype", "measured_ms", "predicted_ms"}
        space.parse(row["genotype"])
        assert row["measured_ms"] > 0
    sampled = LatencyTable.load(table)
    assert sampled.calibrated_on == 2

    one = ["latency", "--genotype", "mnasnet_a1", "--warmup", "1", "--repeats", "2", "--table", str(table)]
    assert main([*one, "--resolution", "16"]) == 0  # the table gains mnasnet_a1's layers
    out = capsys.readouterr().out
    assert "ms measured on cpu, 1 thread(s), batch 1, 16x16" in out and "ms predicted" not in out
    assert "predicted: " in out and len(LatencyTable.load(table)) > len(sampled)
    assert main([*one, "--resolution", "32"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("is for cpu-t1-b1-r16, not cpu-t1-b1-r32") and len(err.splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (["--sample", "2"], "--sample needs --space"),
    (["--space", "darts", "--sample", "1", "--preset", "cifar10"], "is a cell space"),
    (["--genotype", "mnasnet_a1", "--depth", "-1"], "must be positive"),
    (["--genotype", "mnasnet_a1", "--threads", "0"], "must be positive"),
])
def test_cli_bad_input_exits_2_with_one_line(argv, message, capsys):
    try:
        code = main(["latency", *argv])
    except SystemExit as e:  # argparse's own errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
