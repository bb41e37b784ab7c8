"""``nasengine train``: one genotype (a text, or a published name) trained and recorded as a single
trial of a study, the final retraining step; a genotype no space fits is a one-line error."""

import hashlib

import optuna
import pytest

from nasengine.cli.main import main

NB201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_genotype_text_is_trained_and_recorded(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'train.db'}"
    assert main(["train", "--genotype", NB201, "--epochs", "1", "--storage", url]) == 0
    out = capsys.readouterr().out
    study = optuna.load_study(study_name="train-nasbench201-digits", storage=url)
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.user_attrs["genotype"] == NB201 and trial.user_attrs["params"] > 0
    assert study.user_attrs["algo"] == "train" and study.user_attrs["space"] == "nasbench201"
    assert f"test accuracy {trial.value:.4f}" in out


def test_a_genotype_no_space_fits_is_a_one_line_error(tmp_path, capsys):
    db = tmp_path / "train.db"
    url = f"sqlite:///{db}"
    assert main(["train", "--genotype", NB201, "--epochs", "1", "--storage", url]) == 0
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    capsys.readouterr()
    assert main(["train", "--genotype", "normal: foo~1 + bar~0", "--storage", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nasengine: error: no search space fits genotype") and err.count("\n") == 1
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
