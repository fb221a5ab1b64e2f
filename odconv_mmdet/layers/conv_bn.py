"""Folding an eval-mode BatchNorm into the conv before it.

``bn(conv(x)) = s * (conv(x) + b - mean) + beta`` with ``s = gamma / sqrt(var + eps)`` per output
channel, so the conv with its kernels scaled by ``s`` along the output dimension and the bias
``s * (b - mean) + beta`` computes the same. For ODConv the output dimension of the kernel stack
[K, out, in/g, k, k] is 1, and every one of the K kernels is scaled: the kernel mixing, the
attentions on the input, the taps and the filters all commute with a per-output-channel scale.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn


def fold_batch_norm(weight: torch.Tensor, bias: Optional[torch.Tensor], bn: nn.Module,
                    out_dim: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of a conv with the eval-mode ``bn`` after it folded in; ``out_dim`` is the
    output-channel dimension of ``weight`` (0 for nn.Conv2d, 1 for ODConv's kernel stack)."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = bn.weight * scale
    shape = [1] * weight.dim()
    shape[out_dim] = -1
    shift = -bn.running_mean if bias is None else bias - bn.running_mean
    folded_bias = scale * shift
    if bn.bias is not None:
        folded_bias = folded_bias + bn.bias
    return weight * scale.view(shape), folded_bias
