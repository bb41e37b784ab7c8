"""Nothing a trial trained is thrown away: every COMPLETE trial of a search (run on Ray, the weights
travelling back with the result) and of `nasengine train` keeps its trained state_dict as an Optuna
artifact, so `nasengine export --weights` works from the study alone and the weights fit the exported
network in a Python without nasengine."""

import subprocess
import sys
from pathlib import Path

import optuna
import torch
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import TrialState

optuna.logging.set_verbosity(optuna.logging.WARNING)

CLI = [sys.executable, "-m", "nasengine.cli.main"]
TINY = "space: nasbench201\nalgo: random\nnetwork: {C: 4}\ntrain: {batch_size: 256}\ndiagrams: false\n"


def nasengine(*args, cwd):
    done = subprocess.run(CLI + list(args), cwd=cwd, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    return done


def exported_weights_fit(folder: Path, storage: str, study_name: str, stored: str) -> None:
    """`nasengine export --weights` of the study's best trial: the .pt beside the module equals the stored
    weights and loads (strictly) into the exported ``Network()`` where importing nasengine fails."""
    nasengine("export", "--storage", storage, "--study-name", study_name, "--weights", "--out", "best.py", cwd=folder)
    exported, kept = torch.load(folder / "best.pt"), torch.load(stored)
    assert exported.keys() == kept.keys() and all(torch.equal(exported[k], kept[k]) for k in kept)
    code = ("import sys, runpy, torch; sys.modules['nasengine'] = None; "
            "net = runpy.run_path('best.py')['Network'](); net.load_state_dict(torch.load('best.pt')); print('ok')")
    ran = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0 and ran.stdout.strip() == "ok", ran.stderr


def test_search_and_train_keep_their_weights_for_export(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY)
    storage = "sqlite:///s.db"
    nasengine("search", "--config", "tiny.yaml", "--trials", "2", "--epochs", "1", "--storage", storage, cwd=tmp_path)
    rdb = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}")
    study = optuna.load_study(study_name="nasbench201-random-digits", storage=rdb)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    for t in study.trials:
        (meta,) = [m for m in get_all_artifact_meta(t, storage=rdb) if m.filename.endswith(".pt")]
        assert meta.filename == f"weights-trial-{t.number}.pt"
        assert Path(t.user_attrs["weights"]) == tmp_path / "nasengine-artifacts" / meta.artifact_id
    exported_weights_fit(tmp_path, storage, study.study_name, study.best_trial.user_attrs["weights"])

    nasengine("train", "--trial", "-1", "--study-name", study.study_name, "--epochs", "1", "--storage", storage,
              "--into", "trained", cwd=tmp_path)
    (trained,) = optuna.load_study(study_name="trained", storage=rdb).trials
    assert Path(trained.user_attrs["weights"]).is_file()
    exported_weights_fit(tmp_path, storage, "trained", trained.user_attrs["weights"])
