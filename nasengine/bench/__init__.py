"""Tabular benchmark mode: search algorithms compared on a table of trained cells (NAS-Bench-201) in
seconds, with Optuna's samplers as baselines."""

from nasengine.bench.table import Table, TableEvaluator, load_table

__all__ = ["Table", "TableEvaluator", "load_table"]
