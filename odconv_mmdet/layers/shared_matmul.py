"""ODConv with its K kernels shared by the whole batch: no per-sample kernel is built.

Every attention of the official computation is a scale on an activation (reference page,
Output), so per sample b, with the columns (taps) of x_b laid out as rows of k*k*in values:

    y_b = alpha_f[b] * sum_i alpha_w[b, i] * W_i @ (tap t of x_b * alpha_s[b, t] * alpha_c[b])

All K kernels are then one matmul [B*L, k*k*in] x [k*k*in, out*K], shared by the batch, and
alpha_w mixes its K outputs per sample. It costs K times a static conv's multiply-adds, but
writes and reads no B per-sample kernels: it pays where a sample has few output positions L
(conv_path_policy.py). ``groups == 1`` only. TorchScript-able.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F

Pair = Tuple[int, int]


def channels_last_columns(x: torch.Tensor, kernel_size: int, stride: Pair, padding: Pair,
                          dilation: Pair) -> torch.Tensor:
    """im2col of x [B, C, H, W] as [B, out_h, out_w, k*k, C]: tap-major rows of k*k*C values, in
    the order of a kernel [out, k, k, C]. Built from strided slices of the zero-padded input in
    channels-last layout (a copy and a stack: cheaper forward and backward than F.unfold plus the
    transpose a shared matmul needs). matmul_formulations._tap_slices is the NCHW twin: its slices,
    taken through permuted views here, gave the same numbers but ran slower (forward + backward)."""
    x = x.permute(0, 2, 3, 1)
    if padding[0] > 0 or padding[1] > 0:
        x = F.pad(x, [0, 0, padding[1], padding[1], padding[0], padding[0]])
    height, width = x.size(1), x.size(2)
    (sh, sw), (dh, dw) = stride, dilation
    out_h = (height - dh * (kernel_size - 1) - 1) // sh + 1
    out_w = (width - dw * (kernel_size - 1) - 1) // sw + 1
    taps: List[torch.Tensor] = []
    for i in range(kernel_size):
        for j in range(kernel_size):
            taps.append(x[:, i * dh:i * dh + (out_h - 1) * sh + 1:sh, j * dw:j * dw + (out_w - 1) * sw + 1:sw])
    return torch.stack(taps, dim=3)


def shared_matmul_conv(x: torch.Tensor, kernels: torch.Tensor, channel: Optional[torch.Tensor],
                       filter_att: Optional[torch.Tensor], spatial: Optional[torch.Tensor],
                       kernel: Optional[torch.Tensor], stride: Pair, padding: Pair, dilation: Pair) -> torch.Tensor:
    """The official output (before any bias) from the kernel stack ``kernels`` [K, out, in, k, k]
    and the attentions (channel [B, in, 1, 1], filter [B, out, 1, 1], spatial [B, k, k], kernel
    [B, K]; None where absent). Returns [B, out, out_h, out_w] in channels-last memory."""
    batch, in_channels = x.size(0), x.size(1)
    kernel_num, out_channels, k = kernels.size(0), kernels.size(1), kernels.size(3)
    cols = channels_last_columns(x, k, stride, padding, dilation)  # [B, oh, ow, k*k, in]
    out_h, out_w = cols.size(1), cols.size(2)
    positions = out_h * out_w
    # alpha_s[b, t] * alpha_c[b, c] for row entry (t, c): one scale of the columns per sample
    cols = cols.view(batch, positions, k * k * in_channels)
    if channel is not None or spatial is not None:
        scale = x.new_ones(batch, 1, 1) if channel is None else channel.view(batch, 1, in_channels)
        if spatial is not None:
            scale = spatial.view(batch, k * k, 1) * scale
        cols = cols * scale.expand(batch, k * k, in_channels).reshape(batch, 1, k * k * in_channels)
    # rows (o, i) of the stacked kernels, so each position's K outputs of a channel are adjacent
    weight = kernels.permute(1, 0, 3, 4, 2).reshape(out_channels * kernel_num, k * k * in_channels)
    out = torch.mm(cols.view(batch * positions, k * k * in_channels), weight.t())  # [B*L, out*K]
    if kernel is not None:
        out = torch.bmm(out.view(batch, positions * out_channels, kernel_num), kernel.view(batch, kernel_num, 1))
    out = out.view(batch, positions, out_channels)
    if filter_att is not None:
        out = out * filter_att.view(batch, 1, out_channels)
    return out.view(batch, out_h, out_w, out_channels).permute(0, 3, 1, 2)
