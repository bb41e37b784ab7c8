import math
import pickle

import pytest
import torch
import torch.nn as nn

from nasengine.data import load_dataset
from nasengine.errors import NasError
from nasengine.models.flops import count_flops, count_params
from nasengine.training import (
    CosineSchedule,
    TrainConfig,
    TrainingDiverged,
    TrainResult,
    TrainStep,
    make_optimizer,
    make_plan,
    run_epoch,
    seed_everything,
    train,
)

torch.set_num_threads(1)  # see test_nasnet_a_learns_digits_in_ten_epochs


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


class StandIn(nn.Module):
    """A small conv net with the hooks the trainer looks for: ``drop_path_prob`` and an aux head."""

    def __init__(self, c_in=1, num_classes=10, f=16, aux=False):
        super().__init__()
        self.drop_path_prob = 0.0
        self.seen_drop_path = []
        self.body = nn.Sequential(
            nn.Conv2d(c_in, f, 3, padding=1, bias=False), nn.BatchNorm2d(f), nn.ReLU(),
            nn.Conv2d(f, 2 * f, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * f), nn.ReLU(),
            nn.Conv2d(2 * f, 2 * f, 3, padding=1, bias=False), nn.BatchNorm2d(2 * f), nn.ReLU(),
        )
        self.head = nn.Linear(2 * f, num_classes)
        self.aux_head = nn.Linear(2 * f, num_classes) if aux else None

    def forward(self, x):
        if self.training:
            self.seen_drop_path.append(self.drop_path_prob)
        h = self.body(x).mean((2, 3))
        if self.training and self.aux_head is not None:
            return self.head(h), self.aux_head(h)
        return self.head(h)


def _fit(digits, seed=0, model_kw=None, **cfg):
    seed_everything(seed)
    model = StandIn(**(model_kw or {}))
    settings = {"epochs": 2, "seed": seed, "device": "cpu"}
    settings.update(cfg)
    return model, train(model, digits, TrainConfig(**settings))


def test_training_learns_above_chance(digits):
    reports = []
    seed_everything(0)
    model = StandIn()
    result = train(model, digits, TrainConfig(epochs=3, device="cpu"), report=lambda e, a: reports.append((e, a)))
    assert isinstance(result, TrainResult)
    assert [e for e, _ in reports] == [1, 2, 3]
    assert [a for _, a in reports] == result.curve
    assert result.val_acc == result.curve[-1] == result.value
    assert result.val_acc > 0.6  # chance is 0.1
    assert result.train_loss[-1] < result.train_loss[0]
    assert result.split == "val" and result.test_acc is None and result.epochs == 3


def test_result_fields_are_sane(digits):
    model, result = _fit(digits, epochs=1, test=True)
    assert result.params == sum(p.numel() for p in model.parameters()) == count_params(model)
    # conv1: 16*8*8 outputs x 9 MACs; conv2: 32*4*4 outputs x 16*9; conv3: 32*4*4 x 32*9; linear: 32*10
    assert result.flops == 16 * 64 * 9 + 32 * 16 * 16 * 9 + 32 * 16 * 32 * 9 + 32 * 10
    assert 0 < result.train_seconds < 60
    assert all(0.0 <= a <= 1.0 for a in result.curve) and len(result.curve) == 1
    assert 0.0 <= result.test_acc <= 1.0
    assert result.device == "cpu"
    assert pickle.loads(pickle.dumps(result)) == result


def test_sizes_come_from_nasengine_flops_without_the_aux_head(digits):
    model, result = _fit(digits, epochs=1, model_kw={"aux": True})
    assert result.params == count_params(model) == sum(p.numel() for n, p in model.named_parameters()
                                                       if not n.startswith("aux_head."))
    assert result.flops == count_flops(model, (1, 8, 8))


def test_nan_loss_raises_training_diverged(digits):
    with pytest.raises(TrainingDiverged, match="loss is (nan|inf)") as e:
        _fit(digits, lr=1e30, grad_clip=0.0)
    assert isinstance(e.value, RuntimeError)


def test_deterministic_on_cpu_with_a_seed(digits):
    _, a = _fit(digits, seed=3, mixup=0.2, cutmix=0.2)
    _, b = _fit(digits, seed=3, mixup=0.2, cutmix=0.2)
    _, c = _fit(digits, seed=4, mixup=0.2, cutmix=0.2)
    assert a.curve == b.curve and a.train_loss == b.train_loss
    assert a.train_loss != c.train_loss


def test_drop_path_schedule_is_linear(digits):
    model, _ = _fit(digits, epochs=4, drop_path=0.2)
    steps = len(digits.train_y) // 64
    assert model.seen_drop_path == pytest.approx([0.2 * e / 4 for e in range(4) for _ in range(steps)])


def test_aux_head_is_trained(digits):
    seed_everything(0)
    with_aux, _ = _fit(digits, epochs=1, model_kw={"aux": True}, aux_weight=0.4)
    seed_everything(0)
    no_aux, _ = _fit(digits, epochs=1, model_kw={"aux": True}, aux_weight=0.0)
    fresh = StandIn(aux=True)
    seed_everything(0)
    fresh = StandIn(aux=True)
    assert not torch.equal(with_aux.aux_head.weight, fresh.aux_head.weight)
    assert torch.equal(no_aux.aux_head.weight, fresh.aux_head.weight)  # no loss, no gradient, no decay


def test_mixup_and_cutmix_train(digits):
    _, result = _fit(digits, epochs=2, mixup=0.4, cutmix=1.0)
    assert all(math.isfinite(v) for v in result.train_loss)
    assert result.val_acc > 0.2


def test_final_trains_on_train_and_val_and_reports_test(digits):
    reports = []
    seed_everything(0)
    model = StandIn()
    result = train(model, digits, TrainConfig(epochs=1, final=True, device="cpu"),
                   report=lambda e, a: reports.append(a))
    assert result.split == "test" and result.val_acc is None
    assert result.test_acc == result.curve[-1] == reports[-1] == result.value


def test_cosine_schedule_with_warmup():
    warm = CosineSchedule(lr=0.1, min_lr=0.0, total=100, warmup=10)
    assert warm(0) == pytest.approx(0.01)
    assert warm(9) == pytest.approx(0.1)
    assert warm(10) == pytest.approx(0.1)
    assert warm(55) == pytest.approx(0.05)
    cold = CosineSchedule(lr=0.1, min_lr=0.0, total=100)
    assert cold(99) < 1e-3
    assert all(cold(s) >= cold(s + 1) for s in range(99))
    # A run's schedule: warmup_epochs and epochs counted in steps.
    assert CosineSchedule.for_run(TrainConfig(epochs=4, warmup_epochs=0.5, lr=0.2, min_lr=0.01), 10) == \
        CosineSchedule(lr=0.2, min_lr=0.01, total=40, warmup=5)


def test_an_epoch_drives_any_step_at_the_schedules_rates(digits):
    """The epoch is one replaceable part: it calls whatever step it is given once per full batch, at the
    schedule's learning rate, and returns the mean of the losses the step returned."""
    import numpy as np

    cfg = TrainConfig(epochs=2, batch_size=100, warmup_epochs=1, device="cpu")
    plan = make_plan(digits, cfg)
    schedule = CosineSchedule.for_run(cfg, plan.steps_per_epoch)
    seed_everything(0)
    model = StandIn()
    generator = torch.Generator().manual_seed(0)
    inner = TrainStep(model, make_optimizer(model, cfg), cfg, np.random.default_rng(0), generator)
    calls = []

    def step(x, y, lr):
        loss = inner(x, y, lr)
        calls.append((len(y), lr, loss.item()))
        return loss

    mean = run_epoch(step, schedule, plan, generator, epoch=1)
    assert plan.steps_per_epoch == len(digits.train_y) // 100 == len(calls) == 10
    assert [n for n, _, _ in calls] == [100] * 10
    assert [lr for _, lr, _ in calls] == [schedule(10 + i) for i in range(10)]
    assert mean == pytest.approx(sum(v for _, _, v in calls) / 10)

    with pytest.raises(TrainingDiverged, match=r"loss is nan at epoch 3, step 1 \(lr "):
        run_epoch(lambda x, y, lr: torch.tensor(float("nan")), schedule, plan, generator, epoch=2)


def test_bad_config_is_a_nas_error(digits):
    for bad in ({"epochs": 0}, {"lr": 0}, {"label_smoothing": 1.0}, {"warmup_epochs": 5, "epochs": 2}):
        with pytest.raises(NasError):
            train(StandIn(), digits, TrainConfig(**bad))


def test_synthetic_cifar_shaped_data_trains():
    data = load_dataset("synthetic", num_classes=4, in_channels=3, image_size=16, n_train=128, n_val=64, n_test=32)
    seed_everything(0)
    model = StandIn(c_in=3, num_classes=4)
    result = train(model, data, TrainConfig(epochs=2, batch_size=32, lr=0.05, cutout=4, device="cpu"))
    assert result.val_acc > 0.4  # chance 0.25


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_trains_on_cuda(digits):
    seed_everything(0)
    model = StandIn(aux=True)
    result = train(model, digits, TrainConfig(epochs=3, device="cuda", drop_path=0.1, mixup=0.2))
    assert result.device.startswith("cuda") and result.val_acc > 0.5
    assert next(model.parameters()).is_cuda
    with pytest.raises(TrainingDiverged):
        train(StandIn().cuda(), digits, TrainConfig(epochs=3, lr=1e30, grad_clip=0.0, device="cuda"))


# ---------------------------------------------------------------------------------------- evaluators


def test_train_evaluator_pickles_and_builds_its_config():
    from nasengine.engine.evaluators import TrainEvaluator

    ev = TrainEvaluator(space="nasnet", dataset="digits", epochs=3, network={"F": 8}, train={"lr": 0.05})
    clone = pickle.loads(pickle.dumps(ev))
    assert vars(clone) == vars(ev)
    cfg = clone.config(seed=7)
    assert (cfg.epochs, cfg.seed, cfg.lr, cfg.final) == (3, 7, 0.05, False)
    skeleton, macro = clone.macro()
    assert skeleton == "nasnet" and macro["F"] == 8
    with pytest.raises(NasError, match="unknown training setting"):
        TrainEvaluator(train={"learning_rate": 0.1})


@pytest.mark.slow
def test_nasnet_a_learns_digits_in_ten_epochs():
    """Issue 2's check: NASNet-A in the nasnet space's digits network, 10 epochs on the CPU, >= 95%
    validation accuracy in under 2 minutes, building and data loading included (about 40 s). One torch
    thread, as a search trial has with the default --cpus-per-trial 1: on a 2-core machine that is busy
    with anything else, two threads that wait on each other are several times slower than one."""
    import time

    from nasengine.engine.evaluators import TrainEvaluator
    from nasengine.spaces.cell import load_space
    from nasengine.zoo.published import get_published

    space = load_space("nasnet")
    text = space.format(space.validate(get_published("nasnet_a")))
    reports = []
    start = time.perf_counter()
    result = TrainEvaluator(space="nasnet", epochs=10, device="cpu", threads=1)(text, 0, lambda e, a: reports.append(a))
    seconds = time.perf_counter() - start
    print(f"NASNet-A on digits: {result['value']:.4f} after 10 epochs in {seconds:.1f} s, "
          f"{result['params']:,} parameters")
    assert result["value"] >= 0.95 and reports == result["curve"] and len(reports) == 10
    assert seconds < 120
