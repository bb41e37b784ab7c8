"""Every distinct layer a block space's networks can have, so that one latency table covers the space.

A layer of block ``i`` depends only on block ``i``'s own choices and on how many channels block ``i - 1``
hands it (its filters; the stem's for the first block); strides, and so spatial sizes, are the
backbone's. So the layers of all genotypes are those of the genotypes that vary block ``i``'s choices
(with the most layers, so the repeated layer appears) and block ``i - 1``'s filters, the other blocks
left as sampled: 7 x 3 x 4 x 2 x 2 x 2 x 3 = 2,016 genotypes for ``mnasnet``, laid out with the
network's own ``layer_specs`` (about 1,500 distinct layers at any resolution).
"""

from __future__ import annotations

import itertools
import random
from typing import Any

from nasengine.errors import NasError
from nasengine.models.blocks import layer_specs
from nasengine.spaces.blocks import CHOICES, BlockSpace


def space_layer_specs(space: Any, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """The distinct layer specs of every network of block space ``space`` built with ``settings``
    (``build_network`` keyword arguments), in first-seen order."""
    if not isinstance(space, BlockSpace):
        raise NasError(f"space {space.name} is a cell space; latency tables cover block spaces")
    base = space.to_params(space.sample(random.Random(0)))
    n = len(space.backbone)
    seen: dict[tuple, dict[str, Any]] = {}
    for i in range(n):
        own = [space.values(i, c) for c in CHOICES if c != "layers"]
        before = space.values(i - 1, "filters") if i else [None]
        most = max(space.values(i, "layers"), key=lambda d: space.sizes[i][1][d])
        for prev, values in itertools.product(before, itertools.product(*own)):
            params = {**base, **{f"block{i + 1}/{c}": v for c, v in zip([c for c in CHOICES if c != "layers"], values)},
                      f"block{i + 1}/layers": most}
            if prev is not None:
                params[f"block{i}/filters"] = prev
            try:
                specs = layer_specs(space.from_params(params).to_data(), **settings)
            except ValueError as e:
                raise NasError(f"cannot lay out space {space.name}'s networks: {e}") from None
            for s in specs:
                seen.setdefault(tuple(sorted(s.items())), s)
    return list(seen.values())
