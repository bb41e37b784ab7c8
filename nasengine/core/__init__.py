"""The central value: the genotype (pure Python + networkx), its canonical form and hash, and Pareto
dominance over objective tuples."""

from nasengine.core.canonical import canonical, hash_text
from nasengine.core.genotype import Cell, Edge, Genotype
from nasengine.core.pareto import dominates, hypervolume, non_dominated_sort, pareto_front

__all__ = ["Cell", "Edge", "Genotype", "canonical", "dominates", "hash_text", "hypervolume", "non_dominated_sort",
           "pareto_front"]
