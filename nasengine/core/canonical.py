"""Canonical forms of cells: equal strings for cells that are the same up to isomorphism.

A node is the sum of its terms, written ``(source)@op`` and sorted, so reordering nodes or the
edges of a node does not change the form; the cell's output is the sorted list of its output
states' forms. A space may also declare a zero op (``none``: its term, and any term reading a
state that is exactly zero, becomes ``#``) and an identity op (``skip_connect``: the term is its
source's form). This is NAS-Bench-201's own rule (``Structure.to_unique_str(consider_zero=True)``),
under which its 15,625 cells form 6,466 classes; a cell's form there equals the benchmark's
``UniqueString``, so cells grouped by the benchmark are grouped here too.
"""

from __future__ import annotations

import hashlib

from nasengine.core.genotype import Cell, Genotype

ZERO = "#"


def state_forms(cell: Cell, zero_op: str | None = None, identity_op: str | None = None) -> list[str]:
    """The canonical form of every state of the cell."""
    forms = [str(i) for i in range(cell.n_inputs)]
    for node in cell.nodes:
        terms = []
        for edge in node:
            src = forms[edge.src]
            if edge.op == zero_op or src == ZERO:
                terms.append(ZERO)
            elif edge.op == identity_op:
                terms.append(src)
            else:
                terms.append(f"({src})@{edge.op}")
        forms.append("+".join(sorted(terms)))
    return forms


def canonical_cell(cell: Cell, zero_op: str | None = None, identity_op: str | None = None) -> str:
    forms = state_forms(cell, zero_op, identity_op)
    return " ++ ".join(sorted(forms[s] for s in cell.output_states()))


def canonical(genotype: Genotype, zero_op: str | None = None, identity_op: str | None = None) -> str:
    return " ; ".join(f"{name}: {canonical_cell(cell, zero_op, identity_op)}" for name, cell in genotype.cells)


def hash_text(canonical_form: str) -> str:
    return hashlib.sha1(canonical_form.encode()).hexdigest()[:16]
