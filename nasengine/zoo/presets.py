"""Network presets: the ``build_network`` settings (everything but the genotype) for a space and a
setting, at the sizes of the papers.

- ``digits``: the space's ``network:`` block (the small macro network candidates are searched in) and
  the dataset's shape (default: sklearn digits, 10 classes, 1x8x8).
- ``cifar10``: 3x32x32, 10 classes, the papers' CIFAR-10 networks: NASNet-A 6 @ 768 (N=6, F=32),
  PNASNet-5 (N=3, F=48; spaces with one cell), DARTS 20 cells C=36, NAS-Bench-201 N=5 C=16; aux head on.
- ``imagenet-mobile``: 3x224x224, 1000 classes, the mobile (<600M mult-adds) ImageNet networks:
  NASNet-A 4 @ 1056 (N=4, F=44), PNASNet-5 (N=3, F=54), DARTS 14 cells C=48; aux head on.
- ``nb201``: the NAS-Bench-201 CIFAR-10 training network (nb201 skeleton, N=5, C=16).
- ``imagenet``: 3x224x224, 1000 classes, the ``mobile`` skeleton's ImageNet networks (stem stride 2):
  MobileNetV2, MnasNet-A1, EfficientNet-B0..B7 (each at its own resolution, ``zoo/blocks.py``).

The ``mobile`` skeleton on small inputs (``digits``, 8x8, and ``cifar10``, 32x32) keeps the stem at
stride 1: five stride-2 stages take a 32x32 input to 1x1 already (an 8x8 one after three), and
upsampling digits to 224x224 would cost ~800 times the compute for no more information. Where a
network's ``image_size`` (its resolution: ``--resolution``, EfficientNet's scaling) differs from the
data's, training resizes each batch to it (``nasengine.training``).

``published_settings(name, preset)`` gives each published genotype its own paper's size (AmoebaNet-A
CIFAR N=6 F=36, mobile N=4 F=50...). Overrides (``N``, ``F``, ``layers``, ``C``, ``aux``, ``stem``,
``dropout``, ``skeleton``, the dataset shape...) win over the preset; ``None`` values are ignored.
The aux head is on in the paper presets because the papers train with it; ``nasengine export`` and
``nasengine params`` turn it off unless ``--aux`` (papers count without it).
"""

from __future__ import annotations

from typing import Any

from nasengine.errors import NasError, did_you_mean
from nasengine.zoo.blocks import BLOCK_NETWORKS, EFFICIENTNET_SCALING, block_settings

__all__ = ["PRESETS", "network_settings", "published_settings", "PUBLISHED_SPACES", "PAPER_SIZES", "shape_of"]

PRESETS = ("digits", "cifar10", "imagenet-mobile", "nb201", "imagenet")

# (num_classes, in_channels, image_size)
_SHAPES = {"digits": (10, 1, 8), "cifar10": (10, 3, 32), "imagenet-mobile": (1000, 3, 224), "nb201": (10, 3, 32),
           "imagenet": (1000, 3, 224)}

# the macro defaults of each preset per skeleton ("nasnet1": the nasnet skeleton with one cell, PNASNet)
_MACRO: dict[str, dict[str, dict[str, Any]]] = {
    "digits": {
        "nasnet": {"N": 1, "F": 16},
        "darts": {"layers": 3, "C": 16},
        "nb201": {"N": 1, "C": 16},
        "mobile": {"stem_stride": 1},
    },
    "cifar10": {
        # slim cifar_config: 18 cells, F=32, stem_multiplier 3, aux head, dense dropout keep 1.0
        "nasnet": {"N": 6, "F": 32, "stem": "cifar", "aux": True, "dropout": 0.0},
        # PNASNet paper, CIFAR-10: N=3, F=48
        "nasnet1": {"N": 3, "F": 48, "stem": "cifar", "aux": True, "dropout": 0.0},
        # DARTS train.py: layers 20, init_channels 36, auxiliary
        "darts": {"layers": 20, "C": 36, "stem": "cifar", "aux": True},
        "nb201": {"N": 5, "C": 16},
        "mobile": {"stem_stride": 1},
    },
    "imagenet-mobile": {
        # slim mobile_imagenet_config: 12 cells, F=44, stem_multiplier 1, dense dropout keep 0.5
        "nasnet": {"N": 4, "F": 44, "stem": "imagenet", "aux": True, "dropout": 0.5},
        # slim pnasnet mobile_imagenet_config: 9 cells, F=54
        "nasnet1": {"N": 3, "F": 54, "stem": "imagenet", "aux": True, "dropout": 0.5},
        # DARTS train_imagenet.py: layers 14, init_channels 48, auxiliary
        "darts": {"layers": 14, "C": 48, "stem": "imagenet", "aux": True},
    },
    "nb201": {
        "nb201": {"N": 5, "C": 16},
    },
    "imagenet": {
        # the TF MnasNet / EfficientNet networks: 3x3 stride-2 stem to 32, head 1280
        "mobile": {"stem_stride": 2, "stem": 32, "head": 1280},
    },
}

# the space each published genotype belongs with (its skeleton and preset defaults)
PUBLISHED_SPACES = {
    "nasnet_a": "nasnet", "amoebanet_a": "nasnet", "pnasnet_5": "pnasnet",
    "darts_v1": "darts", "darts_v2": "darts", "enas": "enas",
    # MobileNetV2 is the mnasnet space's backbone; MnasNet-A1 (112 filters in block 5) and EfficientNet
    # (112 and 192) are outside it: each has a space of the same choices around its own blocks
    "mobilenet_v2": "mnasnet", "mnasnet_a1": "mnasnet-a1",
    **{name: "efficientnet" for name in EFFICIENTNET_SCALING},
}

# the papers' sizes where they differ from the space's preset
PAPER_SIZES: dict[tuple[str, str], dict[str, Any]] = {
    ("amoebanet_a", "cifar10"): {"N": 6, "F": 36},  # Real et al. 2019, Table 1 (3.2M)
    ("amoebanet_a", "imagenet-mobile"): {"N": 4, "F": 50, "aux_scaling": 0.4},  # Table 2 (5.1M, 555M); tpu aux
    # ENAS micro: 15 normal layers + 2 reductions at layers 5 and 11 (of 17), 36 filters; the DARTS
    # skeleton approximates its macro network (ENAS adds a second 1x1 conv on h_{i-1})
    ("enas", "cifar10"): {"layers": 17, "C": 36},
}


def shape_of(dataset_shape: Any) -> dict[str, int]:
    """``num_classes``/``in_channels``/``image_size`` of a Dataset-like object, a dict with those keys
    or a tuple ``(num_classes, in_channels, image_size)``."""
    keys = ("num_classes", "in_channels", "image_size")
    if isinstance(dataset_shape, dict):
        values = [dataset_shape.get(k) for k in keys]
    elif isinstance(dataset_shape, (tuple, list)):
        values = list(dataset_shape)
    else:
        values = [getattr(dataset_shape, k, None) for k in keys]
    if len(values) != 3 or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values):
        raise NasError(f"dataset shape {dataset_shape!r} needs positive num_classes, in_channels and image_size")
    return dict(zip(keys, values))


def _space(space: Any):
    if isinstance(space, str):
        from nasengine.spaces.cell import load_space
        return load_space(space)
    return space


def network_settings(space: Any, preset: str = "digits", dataset_shape: Any = None, **overrides: Any) -> dict:
    """``build_network`` kwargs (all but ``genotype_data``) for ``space`` (a CellSpace or its name) and
    ``preset``; ``dataset_shape`` (see :func:`shape_of`) replaces the preset's input and class count."""
    from nasengine.models.network import skeleton_settings

    space = _space(space)
    if preset not in PRESETS:
        raise NasError(f"unknown preset {preset!r}{did_you_mean(preset, PRESETS)} (known: {', '.join(PRESETS)})")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    block = dict(space.network)
    skeleton = overrides.pop("skeleton", None) or block.pop("skeleton", None)
    block.pop("skeleton", None)
    if preset == "nb201" and skeleton != "nb201":
        raise NasError(f"preset nb201 is the NAS-Bench-201 network; space {space.name} builds {skeleton} networks")
    if skeleton is None:
        raise NasError(f"space {space.name} names no network skeleton; pass skeleton=...")
    try:
        allowed = skeleton_settings(skeleton)
    except ValueError as e:
        raise NasError(str(e)) from None
    one_cell = skeleton == "nasnet" and "reduce" not in space.cells
    table = _MACRO[preset]
    key = "nasnet1" if one_cell and "nasnet1" in table else skeleton
    if key not in table:
        has = ", ".join(sorted(set(table) - {"nasnet1"}))
        raise NasError(f"preset {preset} has no {skeleton} network (it has: {has})")
    macro = dict(table[key])
    if preset == "digits" and skeleton == space.network.get("skeleton"):
        macro.update(block)  # the space's own search-time network
    settings = {"skeleton": skeleton, **shape_of(dataset_shape if dataset_shape is not None else _SHAPES[preset])}
    settings.update(macro)
    for name in ("num_classes", "in_channels", "image_size"):
        if name in overrides:
            settings[name] = overrides.pop(name)
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        named = ", ".join(name + did_you_mean(name, allowed) for name in unknown)
        raise NasError(f"the {skeleton} network does not take {named} (it takes: {', '.join(allowed)})")
    settings.update(overrides)
    shape_of(settings)  # the shape is still sound
    return settings


def published_settings(name: str, preset: str, dataset_shape: Any = None, **overrides: Any) -> dict:
    """``network_settings`` for the published genotype ``name`` at its own paper's size (a block
    network: its settings from ``zoo/blocks.py``, an EfficientNet's width times the preset's)."""
    if name not in PUBLISHED_SPACES:
        raise NasError(f"no published genotype {name!r}{did_you_mean(name, PUBLISHED_SPACES)} "
                       f"(known: {', '.join(PUBLISHED_SPACES)})")
    if name in BLOCK_NETWORKS:
        base = network_settings(PUBLISHED_SPACES[name], preset, dataset_shape)
        paper = block_settings(name, preset, base.get("width", 1.0))
    else:
        paper = dict(PAPER_SIZES.get((name, preset), {}))
    paper.update({k: v for k, v in overrides.items() if v is not None})
    return network_settings(PUBLISHED_SPACES[name], preset, dataset_shape, **paper)
