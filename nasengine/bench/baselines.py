"""Optuna's own samplers as baselines on a tabular benchmark: the one module outside
``nasengine.storage`` that imports optuna (an in-memory study per run; nothing is stored).

One objective: ``tpe`` (TPESampler), ``gp`` (GPSampler). Several: ``nsga2`` (NSGAIISampler, its
defaults: population 50) and ``motpe`` (TPESampler on a multi-objective study, Optuna's MOTPE,
Ozaki et al. 2020), what a user would pick in Optuna today."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from nasengine.errors import NasError

OPTUNA_SAMPLERS = ("tpe", "gp")
MULTI_OBJECTIVE_SAMPLERS = ("nsga2", "motpe")


def _sampler(name: str, seed: int):
    import optuna

    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def run_sampler(name: str, space, seed: int, more: Callable[[], bool], value_of: Callable, stale_limit: int,
                directions: Sequence[str] = ("maximize",)) -> None:
    """Let Optuna's sampler ``name`` propose cells of ``space`` while ``more()``.

    ``value_of(genotype, hash) -> (value, new)`` scores a proposal (``new`` False for a cell already
    queried; the value a tuple with several ``directions``). A proposal the space does not allow (e.g.
    DARTS' distinct inputs) is told as FAIL; NasError after ``stale_limit`` known or invalid proposals
    in a row."""
    import optuna
    from optuna.distributions import CategoricalDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {k: CategoricalDistribution(v) for k, v in space.param_choices().items()
                     if not k.endswith("/concat")}
    study = optuna.create_study(directions=list(directions), sampler=_sampler(name, seed))
    stale = 0
    while more():
        trial = study.ask(distributions)
        try:
            g = space.from_params(trial.params)
        except NasError:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            stale += 1
        else:
            value, new = value_of(g, space.hash(g))
            study.tell(trial, value)
            stale = 0 if new else stale + 1
        if stale >= stale_limit:
            raise NasError(f"{name} proposed {stale_limit} known or invalid cells in a row")
