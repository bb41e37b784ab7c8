"""Inference latency: measured on a target (``measure``), and predicted from a per-layer lookup table
(``table``) that covers a block space's networks (``space``).

How a search uses it (``settings`` are the ``build_network`` keyword arguments, their ``image_size``
the target's resolution)::

    target = Target("cpu", threads=1, batch=1, resolution=settings["image_size"])  # target.to_data() in the study
    ms = measure_network(genotype.to_data(), settings, target)                      # measured
    table = LatencyTable.load(path, target)                                          # refuses another target
    ms = table.predict(genotype.to_data(), settings)                                 # predicted, no torch work
"""

from nasengine.profiler.measure import measure_latency, measure_network
from nasengine.profiler.space import space_layer_specs
from nasengine.profiler.table import LatencyTable
from nasengine.profiler.target import Target

__all__ = ["LatencyTable", "Target", "measure_latency", "measure_network", "space_layer_specs"]
