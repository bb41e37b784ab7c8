"""Search spaces: what can be built, declared in ``search_spaces/*.yaml`` and loaded by name or path."""

from nasengine.spaces.base import AnyGenotype, Space
from nasengine.spaces.blocks import BlockSpace
from nasengine.spaces.cell import CellSpace, load_space, parse_nasbench201, space_from_dict, space_names

__all__ = ["AnyGenotype", "BlockSpace", "CellSpace", "Space", "load_space", "parse_nasbench201", "space_from_dict",
           "space_names"]
