"""The search engine: configuration, preparation, the driver (the only writer of a search's trials),
the worker's entry point, evaluators, and ``nasengine train``'s single recorded training."""

from nasengine.engine.config import (
                                     DEFAULT_EPOCHS,
                                     DEFAULT_TRIALS,
                                     DEFAULT_WORKERS,
                                     SearchConfig,
                                     config_from_mapping,
                                     load_config_file,
                                     split_init,
)
from nasengine.engine.driver import Driver, search_progress
from nasengine.engine.prepare import prepare, study_config
from nasengine.engine.run import SearchResult, run_search, summary
from nasengine.engine.train import train_one

__all__ = [
    "DEFAULT_EPOCHS", "DEFAULT_TRIALS", "DEFAULT_WORKERS", "Driver", "SearchConfig", "SearchResult",
    "config_from_mapping", "load_config_file", "prepare", "run_search", "search_progress", "split_init",
    "study_config", "summary", "train_one",
]
