"""The trainer: ``train(model, dataset, cfg)`` and the parts it is built from, each replaceable by a GPU
fast path on its own (``plan``: device, data and sizes; ``optim``: optimizer and schedule; ``steps``: one
step; ``epoch``: one epoch; ``evaluation``; ``loop``: the run)."""

from nasengine.training.config import TrainConfig, train_defaults
from nasengine.training.device import resolve_device, seed_everything
from nasengine.training.epoch import run_epoch
from nasengine.training.evaluation import evaluate
from nasengine.training.loop import train
from nasengine.training.optim import CosineSchedule, make_optimizer
from nasengine.training.plan import Plan, make_plan
from nasengine.training.result import TrainingDiverged, TrainResult
from nasengine.training.steps import TrainStep, mix, smoothed_loss, split_output

__all__ = [
    "CosineSchedule", "Plan", "TrainConfig", "TrainResult", "TrainStep", "TrainingDiverged", "evaluate",
    "make_optimizer", "make_plan", "mix", "resolve_device", "run_epoch", "seed_everything", "smoothed_loss",
    "split_output", "train", "train_defaults",
]
