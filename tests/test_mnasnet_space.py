"""The MnasNet block space (spaces/blocks.py, search_spaces/mnasnet.yaml): sampling, text and params round
trips, canonical hashes, mutation and neighbours, the YAML checks, every ask/tell algorithm on it, and the
resolver."""

import random

import optuna
import pytest

from nasengine.algorithms import Record, make_algorithm
from nasengine.core import Block, Blocks
from nasengine.errors import NasError
from nasengine.spaces import BlockSpace, CellSpace, load_space
from nasengine.spaces.blocks import CHOICES
from nasengine.zoo.resolve import fitting_space, resolve_text, trial_genotype

SPACE = load_space("mnasnet")
MOBILENET_V2 = ("dwconv k3 c16 n1 s1 | mbconv6 k3 c24 n2 s2 | mbconv6 k3 c32 n3 s2 | mbconv6 k3 c64 n4 s2 | "
                "mbconv6 k3 c96 n3 s1 | mbconv6 k3 c160 n3 s2 | mbconv6 k3 c320 n1 s1")


def test_the_space_is_mnasnets_over_mobilenet_v2():
    assert isinstance(SPACE, BlockSpace) and SPACE.kind == "blocks" and load_space("nasnet").kind == "cell"
    assert isinstance(load_space("nasnet"), CellSpace)
    assert SPACE.network["skeleton"] == "mobile"
    assert SPACE.parse(MOBILENET_V2) == Blocks(SPACE.backbone)  # the backbone itself is in the space
    choices = SPACE.param_choices()
    assert len(choices) == 7 * len(CHOICES)
    assert choices["block3/op"] == ["conv", "dwconv", "mbconv3", "mbconv6"]
    assert choices["block3/kernel"] == [3, 5] and choices["block3/se"] == [0.0, 0.25]
    assert choices["block3/skip"] == ["none", "identity"] and choices["block3/filters"] == [0.75, 1.0, 1.25]
    assert choices["block3/layers"] == [-1, 0, 1]
    assert choices["block1/layers"] == choices["block7/layers"] == [0, 1]  # one layer at least
    assert [SPACE.sizes[i][0][1.25] for i in range(7)] == [20, 30, 40, 80, 120, 200, 400]


def test_200_sampled_genotypes_round_trip_and_mutate_by_one_edit():
    rng = random.Random(0)
    choices = SPACE.param_choices()
    for _ in range(200):
        g = SPACE.sample(rng)
        SPACE.validate(g)
        assert Blocks.parse(str(g)) == g and SPACE.parse(SPACE.format(g)) == g
        params = SPACE.to_params(g)
        assert set(params) == set(choices) and all(params[k] in choices[k] for k in params)
        assert SPACE.from_params(params) == g
        child, kind = SPACE.mutate(g, rng)
        assert kind in CHOICES and SPACE.hash(child) != SPACE.hash(g)
        changed = [k for k, v in SPACE.to_params(child).items() if params[k] != v]
        assert changed == [k for k in changed if k.endswith("/" + kind)] and len(changed) == 1
        assert child in SPACE.neighbours(g)


def test_neighbours_are_every_network_changing_one_edit_in_a_fixed_order():
    g = SPACE.parse(MOBILENET_V2.replace("mbconv6 k3 c24 n2 s2", "mbconv6 k3 c24 n1 s2 noskip"))
    neighbours = SPACE.neighbours(g)
    assert neighbours == SPACE.neighbours(g)
    per_block = [sum(len(v) - 1 for k, v in SPACE.param_choices().items() if k.startswith(f"block{i}/"))
                 for i in range(1, 8)]
    assert len(neighbours) == sum(per_block) - 1  # block 2 is one strided layer: its skip cannot matter
    hashes = {SPACE.hash(n) for n in neighbours}
    assert len(hashes) == len(neighbours) and SPACE.hash(g) not in hashes


def test_equal_networks_hash_equal():
    strided = MOBILENET_V2.replace("mbconv6 k3 c24 n2 s2", "mbconv6 k3 c24 n1 s2")
    a, b = SPACE.parse(strided), SPACE.parse(strided.replace("c24 n1 s2", "c24 n1 s2 noskip"))
    assert a != b and SPACE.canonical(a) == SPACE.canonical(b) and SPACE.hash(a) == SPACE.hash(b)
    c = SPACE.parse(MOBILENET_V2.replace("c96 n3 s1", "c96 n3 s1 noskip"))
    assert SPACE.hash(c) != SPACE.hash(SPACE.parse(MOBILENET_V2))


@pytest.mark.parametrize("text, says", [
    ("mbconv6 k3 c24 n2 s2", "has 7 blocks; the genotype has 1"),
    (MOBILENET_V2.replace("c24 n2 s2", "c24 n2 s1"), "block 2 (mbconv6 k3 c24 n2 s1): stride 1"),
    (MOBILENET_V2.replace("c24 n2", "c25 n2"), "25 filters; space mnasnet allows 18, 24, 30"),
    (MOBILENET_V2.replace("c64 n4", "c64 n6"), "6 layers; space mnasnet allows 3, 4, 5"),
    (MOBILENET_V2.replace("k3 c32", "k7 c32"), "kernel 7 is not among"),
    (MOBILENET_V2.replace("mbconv6 k3 c32", "mbconv4 k3 c32"), "op mbconv4 is not among"),
    (MOBILENET_V2.replace("k3 c32", "k3 se0.5 c32"), "se 0.5 is not among"),
    ("normal: sep_conv_3x3~0 + identity~1", "cell genotype"),
])
def test_genotypes_outside_the_space_give_one_line_errors(text, says):
    with pytest.raises(NasError) as e:
        SPACE.parse(text)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_params_outside_the_space_and_cross_kind_genotypes_are_refused():
    params = SPACE.to_params(SPACE.parse(MOBILENET_V2))
    with pytest.raises(NasError, match="param 'block4/se' is missing"):
        SPACE.from_params({k: v for k, v in params.items() if k != "block4/se"})
    with pytest.raises(NasError, match="'block1/layers' = -1 is not among"):
        SPACE.from_params({**params, "block1/layers": -1})
    with pytest.raises(NasError, match="is a cell space"):
        load_space("nasnet").validate(SPACE.parse(MOBILENET_V2))
    with pytest.raises(NasError, match="is a block space"):
        SPACE.validate(load_space("nasnet").sample(random.Random(0)))


@pytest.mark.parametrize("content, says", [
    ("kind: blocks\nname: x\nbackbone: [conv k3 c8 n1 s1]\nops: [conv]\ncells: [normal]\n", "unknown key(s) cells"),
    ("kind: blocks\nname: x\nops: [conv]\n", "missing key 'backbone'"),
    ("kind: blocks\nname: x\nbackbone: conv k3 c8 n1 s1\nops: [conv]\n", "'backbone' must be a non-empty list"),
    ("kind: blocks\nname: x\nbackbone: [conv k3 c8 n1 s3]\nops: [conv]\n", "backbone: block conv: stride 3"),
    ("kind: blocks\nname: x\nbackbone: [conv k3 c8 n1 s1]\nops: [conv, sep]\n", "ops: block op 'sep'"),
    ("kind: blocks\nname: x\nbackbone: [conv k3 c8 n1 s1]\nops: [conv]\nkernels: [4]\n", "kernels: block conv: kernel"),
    ("kind: blocks\nname: x\nbackbone: [conv k3 c8 n1 s1]\nops: [conv]\nse: [0, 2]\n", "'se' must be a non-empty"),
    ("kind: blocks\nname: x\nbackbone: [conv k3 c8 n1 s1]\nops: [conv]\nskip: [maybe]\n", "'skip' must be"),
    ("kind: blocks\nname: x\nbackbone: [conv k3 c8 n1 s1]\nops: [conv]\nlayers: [-1]\n",
     "block 1 no layer delta gives a positive size"),
    ("kind: blocks\nname: x\nbackbone: [conv k3 c8 n1 s1]\nops: [conv]\nfilters: [1, 1]\n", "distinct floats"),
    ("kind: chain\nname: x\nops: [conv]\n", "unknown kind 'chain' (known: cell, blocks)"),
])
def test_malformed_block_space_files_give_one_line_errors(tmp_path, content, says):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(NasError) as e:
        load_space(str(path))
    assert says in str(e.value) and "\n" not in str(e.value)


def value_of(g: Blocks) -> float:
    """A made-up landscape: bigger inverted bottlenecks with SE score higher."""
    return sum(b.filters * b.layers * (b.op.startswith("mbconv") + b.se) for b in g.blocks) / 1000


@pytest.mark.parametrize("name, settings", [("random", {}), ("evolution", {}), ("evolution", {"variant": "textbook"}),
                                            ("local", {}), ("reinforce", {})])
def test_every_algorithm_searches_the_block_space(name, settings):
    algorithm = make_algorithm(name, SPACE, seed=1, **settings)
    hashes = []
    for number in range(30):
        proposal = algorithm.ask()
        SPACE.validate(proposal.genotype)
        h = SPACE.hash(proposal.genotype)
        hashes.append(h)
        value = None if number == 4 else value_of(proposal.genotype)  # one failed trial
        algorithm.tell(Record(number, proposal.genotype, value, proposal.parent, h))
    if settings.get("variant") != "textbook" and name != "random":
        assert len(set(hashes)) == len(hashes)  # de-duplicated by canonical form


def test_block_texts_and_trials_resolve():
    r = resolve_text(MOBILENET_V2)
    assert r.space == "mnasnet" and r.genotype == SPACE.parse(MOBILENET_V2)
    assert fitting_space(r.genotype) == (r.genotype, "mnasnet")
    single = resolve_text("mbconv6 k3 c24 n2 s2", validate=False)
    assert single.space is None and single.genotype == Blocks((Block("mbconv6", 3, 24, 2, 2),))
    with pytest.raises(NasError, match="no search space fits"):
        resolve_text("mbconv6 k3 c24 n2 s2")
    g = SPACE.sample(random.Random(5))
    distributions = {k: optuna.distributions.CategoricalDistribution(v) for k, v in SPACE.param_choices().items()}
    trial = optuna.trial.create_trial(params=SPACE.to_params(g), distributions=distributions, value=0.5)
    assert trial_genotype(trial, "mnasnet") == g
    trial.set_user_attr("genotype", SPACE.format(g))
    assert trial_genotype(trial, "mnasnet") == g
