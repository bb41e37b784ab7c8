"""nasengine: neural architecture search and scaling experiments on Ray Tune and Optuna."""

from nasengine.core.genotype import Cell, Edge, Genotype
from nasengine.errors import NasError

__all__ = ["Cell", "Edge", "Genotype", "NasError"]
__version__ = "0.1.0"
