"""ODConv's per-sample convs as im2col and one batched matmul, the formulation besides the
official per-sample grouped conv (conv_path_policy.py says where it runs). All sizes are taken
from tensor shapes, so that a traced graph accepts any batch and image size. TorchScript-able.
"""
from typing import List, Tuple

import torch
import torch.nn.functional as F

Pair = Tuple[int, int]


def columns(x: torch.Tensor, kernel_size: int, stride: Pair, padding: Pair, dilation: Pair,
            groups: int) -> torch.Tensor:
    """im2col as [B, g, in/g * k*k, L], rows in the order of a flattened [out, in/g, k, k] kernel."""
    batch, channels = x.size(0), x.size(1)
    if kernel_size == 1 and padding == (0, 0):  # the (strided) input itself
        x = x[:, :, ::stride[0], ::stride[1]]
        return x.reshape(batch, groups, channels // groups, x.size(2) * x.size(3))
    if torch.jit.is_scripting() or torch.jit.is_tracing():
        # Tap slices rather than F.unfold, whose exported graph reshapes with a -1 that
        # onnxruntime cannot resolve for an empty batch.
        taps = torch.stack(_tap_slices(x, kernel_size, stride, padding, dilation), dim=2)
        return taps.reshape(batch, groups, channels // groups * kernel_size * kernel_size,
                            taps.size(3) * taps.size(4))
    cols = F.unfold(x, (kernel_size, kernel_size), dilation, padding, stride)
    return cols.view(batch, groups, channels // groups * kernel_size * kernel_size, cols.size(2))


def _tap_slices(x: torch.Tensor, k: int, stride: Pair, padding: Pair, dilation: Pair) -> List[torch.Tensor]:
    """The k*k strided slices [B, C, out_h, out_w] of the zero-padded input, tap (i, j) by tap."""
    x = F.pad(x, [padding[1], padding[1], padding[0], padding[0]])
    height, width = x.size(2), x.size(3)
    (sh, sw), (dh, dw) = stride, dilation
    slices: List[torch.Tensor] = []
    for i in range(k):
        for j in range(k):
            slices.append(x[:, :, i * dh:height - (k - 1 - i) * dh:sh, j * dw:width - (k - 1 - j) * dw:sw])
    return slices


def batched_matmul_conv(x: torch.Tensor, weight: torch.Tensor, out_shape: List[int], stride: Pair, padding: Pair,
                        dilation: Pair, groups: int) -> torch.Tensor:
    """Each sample x[b] convolved with its kernels weight[b] [out, in/g, k, k] (a [1, ...] weight
    is shared by the batch): one batched matmul of the kernels with the columns, viewed as the
    conv's output shape [B, out, out_h, out_w]."""
    out_channels, k = weight.size(1), weight.size(3)
    weight = weight.reshape(weight.size(0), groups, out_channels // groups, weight.size(2) * k * k)
    out = torch.matmul(weight, columns(x, k, stride, padding, dilation, groups))  # [B, g, out/g, L]
    return out.view(out_shape)
