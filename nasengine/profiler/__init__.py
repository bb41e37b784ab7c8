"""Inference latency: measured on a target (``measure``), and predicted from a per-layer lookup table
(``table``) that covers a block space's networks (``space``)."""

from nasengine.profiler.measure import measure_latency, measure_network
from nasengine.profiler.space import space_layer_specs
from nasengine.profiler.table import LatencyTable
from nasengine.profiler.target import Target

__all__ = ["LatencyTable", "Target", "measure_latency", "measure_network", "space_layer_specs"]
