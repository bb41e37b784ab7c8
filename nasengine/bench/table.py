"""Tabular benchmarks: score a candidate by looking it up in a table instead of training it.

A table is a CSV file with a column ``ArchitectureString`` (a cell in the space's notation, e.g.
NAS-Bench-201's ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``, or the engine's own text form) and one
numeric column per dataset or metric; any such table works. ``TableEvaluator`` has the evaluator
shape of ``docs/design.md`` and pickles as plain values; each process reads a table once.
The value is returned in the table's own unit (NAS-Bench-201's accuracies are percentages).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable
from typing import Any

from nasengine.core.genotype import Genotype
from nasengine.errors import NasError
from nasengine.spaces.cell import CellSpace, load_space

KEY_COLUMN = "ArchitectureString"


class Table:
    """One column of a table: cell text -> value, keyed by the space's formatting of each cell."""

    def __init__(self, path: str, column: str, space: CellSpace) -> None:
        self.path, self.column, self.space = path, column, space
        if not os.path.isfile(path):
            raise NasError(f"table {path!r} does not exist")
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if not header:
                raise NasError(f"table {path!r} is empty")
            for name in (KEY_COLUMN, column):
                if name not in header:
                    numeric = [h for h in header if h != KEY_COLUMN]
                    raise NasError(f"table {path!r} has no column {name!r} (columns: {', '.join(numeric)})")
            key_at, value_at = header.index(KEY_COLUMN), header.index(column)
            self.raw: dict[str, float] = {}
            for line, row in enumerate(reader, start=2):
                if len(row) <= max(key_at, value_at):
                    raise NasError(f"table {path!r}, line {line}: too few fields")
                try:
                    value = float(row[value_at])
                except ValueError:
                    raise NasError(f"table {path!r}, line {line}: {column} {row[value_at]!r} is not a number") from None
                if not math.isfinite(value):
                    raise NasError(f"table {path!r}, line {line}: {column} is {row[value_at]}")
                self.raw[row[key_at].strip()] = value
        if not self.raw:
            raise NasError(f"table {path!r} has no rows")
        self._normalised: dict[str, str] | None = None  # the space's text -> the table's

    def best(self) -> float:
        return max(self.raw.values())

    def __len__(self) -> int:
        return len(self.raw)

    def value(self, g: Genotype) -> float:
        return self.raw[self.row(g)]

    def row(self, g: Genotype) -> str:
        """The cell as the table writes it (its key)."""
        key = self.space.format(g)
        if key in self.raw:
            return key
        if self._normalised is None:  # the table writes cells differently: read every row once
            self._normalised = {}
            for text in self.raw:
                try:
                    self._normalised[self.space.format(self.space.parse(text))] = text
                except NasError as e:
                    raise NasError(f"table {self.path!r}: cannot read cell {text!r} ({e})") from None
        if key not in self._normalised:
            raise NasError(f"cell {key!r} is not in table {self.path!r}")
        return self._normalised[key]


_TABLES: dict[tuple, Table] = {}


def load_table(path: str, column: str, space: str | CellSpace = "nasbench201") -> Table:
    """The table's column for the space, read once per process (again when the file changes)."""
    space = space if isinstance(space, CellSpace) else load_space(space)
    path = os.fspath(path)
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        stamp = None
    key = (os.path.abspath(path), stamp, column, space.name, space.notation, space.ops)
    if key not in _TABLES:
        _TABLES[key] = Table(path, column, space)
    return _TABLES[key]


class TableEvaluator:
    """Evaluator that answers from a table: ``evaluator(genotype_text, seed, report) -> dict``."""

    def __init__(self, table_path: str, column: str, space: str = "nasbench201") -> None:
        self.table_path = os.fspath(table_path)
        self.column = str(column)
        self.space = space if isinstance(space, str) else space.name

    def __repr__(self) -> str:
        return f"TableEvaluator({self.table_path!r}, {self.column!r}, space={self.space!r})"

    def table(self) -> Table:
        return load_table(self.table_path, self.column, self.space)

    def __call__(self, genotype_text: str, seed: int = 0,
                 report: Callable[[int, float], None] | None = None) -> dict[str, Any]:
        table = self.table()
        value = table.value(table.space.parse(genotype_text))
        if report is not None:
            report(1, value)
        return {"value": value, "curve": [value], "params": 0, "flops": 0, "train_seconds": 0.0}
