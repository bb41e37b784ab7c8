"""What a weight-sharing search collapses to: parameter-free ops (zero, identities, pooling), which
DARTS drifts towards when searched long (Zela et al. 2020; Liang et al. 2019, DARTS+)."""

from __future__ import annotations

PARAM_FREE_OPS = ("none", "identity", "skip_connect", "enas_identity")  # and every pooling op


def param_free(genotype) -> int:
    """Parameter-free ops (zero, identities, pooling) on the genotype's edges, all cells together."""
    return sum(1 for _, cell in genotype.cells for node in cell.nodes for e in node
               if e.op in PARAM_FREE_OPS or "pool" in e.op)
