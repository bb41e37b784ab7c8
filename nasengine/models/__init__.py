"""The PyTorch model code: ops, cells, networks, and counting params and multiply-adds. These files
import only torch, the standard library and each other: ``nasengine export`` copies ops, cells and
network verbatim into a standalone file."""

from nasengine.models.flops import count_flops, count_params
from nasengine.models.network import SKELETONS, build_network, skeleton_settings
from nasengine.models.ops import OPS

__all__ = ["OPS", "SKELETONS", "build_network", "count_flops", "count_params", "skeleton_settings"]
