"""Nothing a trial trained is thrown away: every COMPLETE trial of a search (run on Ray, the weights
travelling back with the result) and of `nasengine train` keeps its trained state_dict as an Optuna
artifact, so `nasengine export --weights` works from the study alone and the weights fit the exported
network in a Python without nasengine."""

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
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


def scored(genotype_text: str, seed: int, report) -> dict:
    """A stand-in for training: a value from the genotype's text and a one-tensor state_dict."""
    import base64
    import hashlib
    import io

    value = int(hashlib.sha256(genotype_text.encode()).hexdigest(), 16) % 1000 / 1000
    buffer = io.BytesIO()
    torch.save({"w": torch.tensor([value])}, buffer)
    return {"value": value, "weights_pt": base64.b64encode(buffer.getvalue()).decode("ascii")}


def test_keep_weights_k_keeps_the_files_of_the_best_k_also_across_a_resume(tmp_path):
    from nasengine.engine import SearchConfig, run_search

    cfg = SearchConfig(space="nasbench201", algo="random", trials=5, storage=f"sqlite:///{tmp_path / 'k.db'}",
                       executor="inprocess", diagrams=False, keep_weights=2)
    for trials in (5, 8):  # then resumed with a larger budget: the files kept before are taken in
        cfg.trials = trials
        run_search(cfg, evaluator=scored, stream=None)
        study = optuna.load_study(study_name="nasbench201-random-digits", storage=cfg.storage)
        complete = sorted(study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: -t.value)
        assert len(complete) == trials
        kept = [t for t in complete if "weights" in t.user_attrs and Path(t.user_attrs["weights"]).is_file()]
        assert kept == complete[:2]
        assert [torch.load(t.user_attrs["weights"])["w"].item() for t in kept] == \
            [pytest.approx(t.value) for t in kept]
    assert len(list((tmp_path / "nasengine-artifacts").iterdir())) == 2
