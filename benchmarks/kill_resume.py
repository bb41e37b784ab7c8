"""The issue's kill check (issue 21), on real processes: a 20-trial search whose driver is SIGKILLed at
random moments ten times in a row, rerun each time, must end with exactly 20 COMPLETE trials, trial
numbers 0..n-1 without twins, nothing RUNNING, and no candidate trained twice.

    python benchmarks/kill_resume.py sqlite:////tmp/k/k.db /tmp/k
    python benchmarks/kill_resume.py postgresql://USER@HOST:PORT/EMPTY_DB /tmp/k-pg

In-process executor (a SIGKILLed driver then takes its training with it, as Ray's trials are abandoned),
NAS-Bench-201 cells of 4 channels trained 4 epochs on digits (~1.5 s a trial), kills 3-9 s after each
start. Seen here (2 cores; seed 3 on SQLite, seed 4 on PostgreSQL 15): 28 and 30 trials, 20 COMPLETE,
8 and 10 FAIL (each kill that caught a trial running left it RUNNING; the next run marked it FAIL),
0 RUNNING, numbers dense, 20 distinct hashes; about 67 s each.
"""

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna

from nasengine.storage import check_storage_url

CONFIG = ("space: nasbench201\nalgo: evolution\nnetwork: {C: 4}\ntrain: {batch_size: 256}\ndiagrams: false\n"
          "algo_settings: {initial: 4, sample: 2}\n")


def main(url: str, folder: str, seed: int = 3, kills: int = 10, trials: int = 20) -> int:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    work = Path(folder)
    work.mkdir(parents=True, exist_ok=True)
    (work / "kill.yaml").write_text(CONFIG)
    argv = [sys.executable, "-m", "nasengine.cli.main", "search", "--config", "kill.yaml", "--trials", str(trials),
            "--epochs", "4", "--executor", "inprocess", "--storage", url]
    rng = random.Random(seed)
    for i in range(kills):
        with open(work / f"run{i}.log", "w") as log:
            proc = subprocess.Popen(argv, cwd=work, stdout=subprocess.DEVNULL, stderr=log)
            delay = rng.uniform(3.0, 9.0)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        print(f"kill {i} after {delay:.1f}s", flush=True)
    done = subprocess.run(argv, cwd=work, capture_output=True, text=True)
    found = optuna.load_study(study_name="nasbench201-evolution-digits", storage=check_storage_url(url)).trials
    states = [t.state.name for t in found]
    hashes = {t.user_attrs["hash"] for t in found if t.state.name == "COMPLETE"}
    ok = (done.returncode == 0 and states.count("COMPLETE") == trials and "RUNNING" not in states
          and sorted(t.number for t in found) == list(range(len(found))) and len(hashes) == trials)
    print(f"final run exit {done.returncode}; {len(found)} trials: {states.count('COMPLETE')} COMPLETE, "
          f"{states.count('FAIL')} FAIL, {states.count('RUNNING')} RUNNING; {len(hashes)} distinct COMPLETE hashes; "
          f"{'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:4])))
