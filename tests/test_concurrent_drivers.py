"""Two `nasengine search` processes on one study (same storage, same study name, started together), on a
SQLite file and on a PostgreSQL server: between them they finish the budget, number trials without gaps or
twins, never train a cell the other already has, and each one counts the other's trials as they land."""

import re
import subprocess
import sys

import optuna
from optuna.trial import TrialState

optuna.logging.set_verbosity(optuna.logging.WARNING)

CLI = [sys.executable, "-m", "nasengine.cli.main"]
TRIALS = 8


def test_two_drivers_finish_one_budget_between_them(storage_url, tmp_path):
    (tmp_path / "tiny.yaml").write_text("network: {C: 4}\ntrain: {batch_size: 256}\n")
    argv = CLI + ["search", "--config", "tiny.yaml", "--space", "nasbench201", "--algo", "evolution",
                  "--trials", str(TRIALS), "--epochs", "1", "--storage", storage_url, "--study-name", "shared",
                  "--executor", "inprocess", "--no-diagrams", "--algo-setting", "initial=2", "--algo-setting",
                  "sample=2"]
    logs = [open(tmp_path / f"driver{i}.log", "w+") for i in range(2)]
    procs = [subprocess.Popen(argv, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                              env={**__import__("os").environ, "OMP_NUM_THREADS": "1"}) for log in logs]
    try:
        codes = [p.wait(timeout=240) for p in procs]
    finally:
        for p in procs:
            p.kill()
    texts = []
    for log in logs:
        log.seek(0)
        texts.append(log.read())
        log.close()
    assert codes == [0, 0], "\n\n".join(texts)
    from nasengine.storage import check_storage_url

    trials = optuna.load_study(study_name="shared", storage=check_storage_url(storage_url)).trials
    assert sorted(t.number for t in trials) == list(range(len(trials)))  # no twins, no gaps
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == TRIALS and all(t.state == TrialState.FAIL for t in trials if t not in complete)
    hashes = [t.user_attrs["hash"] for t in complete]
    assert len(set(hashes)) == TRIALS  # no cell trained twice
    by_driver = {t.number: t.user_attrs["driver"] for t in trials}
    assert len(set(by_driver.values())) == 2, texts  # both drivers trained
    # each driver counted (and told its evolution) the other's trials: it trained fewer than the budget and
    # still ended on the budget. (Breeding from the other's trials is likely but not certain: parents tie
    # at chance accuracy after one epoch, so a check of it failed a CI run.)
    for text in texts:
        assert f"the study has {TRIALS} COMPLETE" in text, text
        trained = int(re.search(r"trained (\d+) candidate", text).group(1))
        assert 0 < trained < TRIALS, text
