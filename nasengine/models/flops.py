"""Model size: parameters and multiply-adds of one input.

This is nasengine's one counter: the trainer, the evaluators and ``nasengine params`` call
``count_params(model)`` and ``count_flops(model, input_shape)``.

What is counted (the convention of the NAS papers' "mult-adds": NASNet-A's 564M, AmoebaNet-A's 555M
and PNASNet-5's 588M for their mobile ImageNet networks are reproduced to within 0.2%; DARTS's 574M
is not, by this or any other convention tried: 530M, see docs/cells.md):

- ``nn.Conv*``: every output element costs ``kernel area * in_channels / groups`` multiply-adds
  (depthwise convs are cheap, 1x1 convs count fully).
- ``nn.Linear``: ``in_features * out_features`` per input row.
- Not counted: batch norm, activations, pooling, additions of node inputs, concatenations, biases.
- The network runs in eval mode, so the auxiliary head (a training-only branch) and drop path are
  not counted.

The pass runs on the ``meta`` device (shapes only, no arithmetic: a 224x224 ImageNet network costs
no real compute); models with an op that has no meta kernel fall back to one real no-grad forward.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

__all__ = ["count_params", "count_flops", "AUX_PREFIX"]

AUX_PREFIX = "aux_head."


def count_params(model: nn.Module, include_aux: bool = False) -> int:
    """Number of parameters; without the auxiliary head (``aux_head``) unless ``include_aux``, as the
    papers count (DARTS ``count_parameters_in_MB`` skips it; it is dropped after training)."""
    return sum(p.numel() for name, p in model.named_parameters()
               if include_aux or not name.startswith(AUX_PREFIX))


def _module_flops(module: nn.Module, output: torch.Tensor) -> int:
    if isinstance(module, nn.modules.conv._ConvNd):  # noqa: SLF001 - torch's base of every conv
        return output.numel() * math.prod(module.kernel_size) * (module.in_channels // module.groups)
    if isinstance(module, nn.Linear):
        return (output.numel() // module.out_features) * module.in_features * module.out_features
    return 0


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of convolutions and linear layers for one input of ``input_shape`` (C, H, W),
    in eval mode (see the module docstring)."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += _module_flops(module, output)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))]  # noqa: SLF001 - as above
    was_training = model.training
    model.eval()
    try:
        try:
            meta = {name: torch.empty_like(t, device="meta")
                    for name, t in [*model.named_parameters(), *model.named_buffers()]}
            with torch.no_grad():
                torch.func.functional_call(model, meta, (torch.zeros((1, *input_shape), device="meta"),))
        except (NotImplementedError, RuntimeError):
            total = 0
            param = next(model.parameters(), None)
            device = param.device if param is not None else torch.device("cpu")
            with torch.no_grad():
                model(torch.zeros((1, *input_shape), device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return int(total)
