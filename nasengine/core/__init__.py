"""The central value: the genotype (pure Python + networkx) of cells or of blocks, its canonical form and
hash, and Pareto dominance over objective tuples."""

from nasengine.core.blocks import Block, Blocks, canonical_blocks
from nasengine.core.canonical import canonical, hash_text
from nasengine.core.genotype import Cell, Edge, Genotype
from nasengine.core.pareto import dominates, expected_improvement, hypervolume, non_dominated_sort, pareto_front

__all__ = ["Block", "Blocks", "Cell", "Edge", "Genotype", "canonical", "canonical_blocks", "dominates",
           "expected_improvement", "hash_text", "hypervolume", "non_dominated_sort", "pareto_front"]
