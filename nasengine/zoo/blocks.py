"""Published mobile networks of blocks: MobileNetV2, MnasNet-A1 and EfficientNet-B0..B7.

The genotypes are the papers' block tables in nasengine's block text (``core.blocks``); the network
settings (activation, dropout, drop connect and, for EfficientNet, the compound scaling) are in
:data:`SETTINGS` and go with the ``mobile`` skeleton (``models/blocks.py``: stem 3x3 conv of 32, head
1x1 conv to 1280, both scaled with the width).

Measured with ``nasengine params --genotype NAME --preset imagenet`` (1000 classes; 224x224, each
EfficientNet at its own resolution), against the papers:

============== ================ =================== =================== ==================
network        params (ours)    paper               mult-adds (ours)    paper
============== ================ =================== =================== ==================
mobilenet_v2   3,504,872        3.4M (+3.1%)        300.8M              300M (+0.3%)
mnasnet_a1     3,887,038        3.9M (-0.3%)        311.6M              312M (-0.1%)
efficientnet_b0 5,288,548       5.3M (-0.2%)        385.8M              0.39B (-1.1%)
efficientnet_b1 7,794,184       7.8M (-0.1%)        686.8M              0.70B (-1.9%)
efficientnet_b2 9,109,994       9.2M (-1.0%)        993.6M              1.0B (-0.6%)
efficientnet_b3 12,233,232      12M (+1.9%)         1,827.1M            1.8B (+1.5%)
============== ================ =================== =================== ==================

The counts equal torchvision's ``mobilenet_v2`` (3,504,872) and timm's ``mnasnet_a1`` / ``efficientnet_b0..b3``.
MobileNetV2's paper figure is TF-slim's 3.47M (its README) truncated: slim counts the 3,470,760
weights without batch norm's 34,112 parameters, 2.1% above 3.4M; with them the count is 3.1% above.
"""

from __future__ import annotations

from typing import Any

from nasengine.core.blocks import Blocks

# Sandler et al. 2018, Table 2 (t, c, n, s): (1,16,1,1) (6,24,2,2) (6,32,3,2) (6,64,4,2) (6,96,3,1)
# (6,160,3,2) (6,320,1,1); 3x3 kernels, ReLU6, no SE (torchvision models/mobilenetv2.py, TF-slim
# nets/mobilenet/mobilenet_v2.py V2_DEF)
mobilenet_v2 = Blocks.parse("dwconv k3 c16 n1 s1 | mbconv6 k3 c24 n2 s2 | mbconv6 k3 c32 n3 s2 | "
                            "mbconv6 k3 c64 n4 s2 | mbconv6 k3 c96 n3 s1 | mbconv6 k3 c160 n3 s2 | "
                            "mbconv6 k3 c320 n1 s1")

# Tan et al. 2019, Figure 7(a) / tensorflow/tpu models/official/mnasnet/mnasnet_models.py mnasnet_a1:
# 'r1_k3_s11_e1_i32_o16_noskip', 'r2_k3_s22_e6_i16_o24', 'r3_k5_s22_e3_i24_o40_se0.25',
# 'r4_k3_s22_e6_i40_o80', 'r2_k3_s11_e6_i80_o112_se0.25', 'r3_k5_s22_e6_i112_o160_se0.25',
# 'r1_k3_s11_e6_i160_o320'; ReLU throughout (swish came with EfficientNet)
mnasnet_a1 = Blocks.parse("dwconv k3 c16 n1 s1 noskip | mbconv6 k3 c24 n2 s2 | mbconv3 k5 se0.25 c40 n3 s2 | "
                          "mbconv6 k3 c80 n4 s2 | mbconv6 k3 se0.25 c112 n2 s1 | mbconv6 k5 se0.25 c160 n3 s2 | "
                          "mbconv6 k3 c320 n1 s1")

# Tan & Le 2019, Table 1 / tensorflow/tpu models/official/efficientnet/efficientnet_builder.py
# _DEFAULT_BLOCKS_ARGS: 'r1_k3_s11_e1_i32_o16_se0.25', 'r2_k3_s22_e6_i16_o24_se0.25',
# 'r2_k5_s22_e6_i24_o40_se0.25', 'r3_k3_s22_e6_i40_o80_se0.25', 'r3_k5_s11_e6_i80_o112_se0.25',
# 'r4_k5_s22_e6_i112_o192_se0.25', 'r1_k3_s11_e6_i192_o320_se0.25'; swish
efficientnet_b0 = Blocks.parse("dwconv k3 se0.25 c16 n1 s1 | mbconv6 k3 se0.25 c24 n2 s2 | "
                               "mbconv6 k5 se0.25 c40 n2 s2 | mbconv6 k3 se0.25 c80 n3 s2 | "
                               "mbconv6 k5 se0.25 c112 n3 s1 | mbconv6 k5 se0.25 c192 n4 s2 | "
                               "mbconv6 k3 se0.25 c320 n1 s1")

# efficientnet_builder.efficientnet_params: (width, depth, resolution, dropout)
EFFICIENTNET_SCALING: dict[str, tuple[float, float, int, float]] = {
    "efficientnet_b0": (1.0, 1.0, 224, 0.2),
    "efficientnet_b1": (1.0, 1.1, 240, 0.2),
    "efficientnet_b2": (1.1, 1.2, 260, 0.3),
    "efficientnet_b3": (1.2, 1.4, 300, 0.3),
    "efficientnet_b4": (1.4, 1.8, 380, 0.4),
    "efficientnet_b5": (1.6, 2.2, 456, 0.4),
    "efficientnet_b6": (1.8, 2.6, 528, 0.5),
    "efficientnet_b7": (2.0, 3.1, 600, 0.5),
}

BLOCK_NETWORKS: dict[str, Blocks] = {
    "mobilenet_v2": mobilenet_v2,
    "mnasnet_a1": mnasnet_a1,
    **{name: efficientnet_b0 for name in EFFICIENTNET_SCALING},
}

# The network settings of each (all presets): MobileNetV2 trains with dropout 0.2 (slim: keep 0.8),
# MnasNet-A1 with dropout 0.2 (mnasnet_models.py), EfficientNet with its dropout and drop connect 0.2.
SETTINGS: dict[str, dict[str, Any]] = {
    "mobilenet_v2": {"activation": "relu6", "dropout": 0.2, "drop_connect": 0.0},
    "mnasnet_a1": {"activation": "relu", "dropout": 0.2, "drop_connect": 0.0},
    **{name: {"activation": "swish", "dropout": dropout, "drop_connect": 0.2}
       for name, (_, _, _, dropout) in EFFICIENTNET_SCALING.items()},
}

BLOCK_SOURCES: dict[str, str] = {
    "mobilenet_v2": "Sandler et al. 2018, Table 2 (torchvision mobilenetv2.py, TF-slim mobilenet_v2.py)",
    "mnasnet_a1": "Tan et al. 2019, Figure 7 (tensorflow/tpu mnasnet_models.py mnasnet_a1)",
    **{name: "Tan & Le 2019, Table 1 and efficientnet_builder.py efficientnet_params" for name in EFFICIENTNET_SCALING},
}

# (parameters, multiply-adds, where) at 1000 classes and the paper's resolution
BLOCK_FIGURES: dict[str, tuple[float, float, str]] = {
    "mobilenet_v2": (3.4e6, 300e6, "Sandler et al. 2018, Table 4: MobileNetV2 (224x224)"),
    "mnasnet_a1": (3.9e6, 312e6, "Tan et al. 2019, Table 1: MnasNet-A1 (224x224)"),
    "efficientnet_b0": (5.3e6, 0.39e9, "Tan & Le 2019, Table 2: EfficientNet-B0 (224x224)"),
    "efficientnet_b1": (7.8e6, 0.70e9, "Tan & Le 2019, Table 2: EfficientNet-B1 (240x240)"),
    "efficientnet_b2": (9.2e6, 1.0e9, "Tan & Le 2019, Table 2: EfficientNet-B2 (260x260)"),
    "efficientnet_b3": (12e6, 1.8e9, "Tan & Le 2019, Table 2: EfficientNet-B3 (300x300)"),
    "efficientnet_b4": (19e6, 4.2e9, "Tan & Le 2019, Table 2: EfficientNet-B4 (380x380)"),
    "efficientnet_b5": (30e6, 9.9e9, "Tan & Le 2019, Table 2: EfficientNet-B5 (456x456)"),
    "efficientnet_b6": (43e6, 19e9, "Tan & Le 2019, Table 2: EfficientNet-B6 (528x528)"),
    "efficientnet_b7": (66e6, 37e9, "Tan & Le 2019, Table 2: EfficientNet-B7 (600x600)"),
}


def block_settings(name: str, preset: str, preset_width: float = 1.0) -> dict[str, Any]:
    """The settings published block network ``name`` has at ``preset`` beyond the preset's own: its
    activation, dropout and drop connect; for an EfficientNet its depth and width (times the preset's
    width ``preset_width``) and, at ``imagenet``, its own resolution."""
    settings = dict(SETTINGS[name])
    if name in EFFICIENTNET_SCALING:
        width, depth, resolution, _ = EFFICIENTNET_SCALING[name]
        settings.update(width=round(width * preset_width, 6), depth=depth)
        if preset == "imagenet":
            settings["image_size"] = resolution
    return settings
