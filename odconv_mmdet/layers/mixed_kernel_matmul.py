"""Per-sample dynamic matmul that never holds every sample's kernel at once (training only).

With per-sample kernels W_b = (sum_i a[b, i] W_i) * s[b] (s scales each kernel tap), plain
autograd keeps W_b for the whole batch for the backward pass, and builds two more tensors of
that size in it. For deep, low-resolution layers that is B x |W| floats each time (ResNet-50
stage 4, 3x3, batch 8: 75 MB) - far more than the activations - and on a CPU every such fresh
allocation is paid again in page faults. This function works through the batch in chunks of
at most ``CHUNK_FLOATS`` kernel values, saves only its inputs, and rebuilds each chunk's kernels
in backward (a cheap [n, K] x [K, |W|] product) instead of storing them.

Plain PyTorch; ODConv2d uses it only where autograd is recording (TorchScript and tracing
see the plain formulation, which computes the same numbers).
"""
from typing import Optional

import torch

CHUNK_FLOATS = 1 << 21  # 8 MB of float32 kernels per chunk: stays clear of mmap-sized allocations


def _chunk_size(batch: int, kernel_numel: int) -> int:
    return max(1, min(batch, CHUNK_FLOATS // max(kernel_numel, 1)))


class MixedKernelMatmul(torch.autograd.Function):
    """out[b] = W_b @ cols[b], W_b = (sum_i kernel[b, i] weight[i]) * spatial[b] per tap.

    Shapes: cols [B, g, C/g * T, L]; weight [K, out, C/g, T] (T = k*k taps); kernel [B, K];
    spatial [B, T]. Returns [B, g, out/g, L].
    """

    @staticmethod
    def forward(ctx, cols, weight, kernel, spatial):
        batch, groups, _, positions = cols.shape
        num_kernels, out_channels, cin_g, taps = weight.shape
        flat_weight = weight.reshape(num_kernels, -1)
        out = cols.new_empty(batch, groups, out_channels // groups, positions)
        step = _chunk_size(batch, flat_weight.size(1))
        for start in range(0, batch, step):
            end = min(start + step, batch)
            kernels = torch.mm(kernel[start:end], flat_weight).view(end - start, out_channels, cin_g, taps)
            kernels.mul_(spatial[start:end].view(end - start, 1, 1, taps))
            torch.matmul(kernels.view(end - start, groups, out_channels // groups, -1), cols[start:end],
                         out=out[start:end])
        ctx.save_for_backward(cols, weight, kernel, spatial)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        cols, weight, kernel, spatial = ctx.saved_tensors
        batch, groups = cols.shape[:2]
        num_kernels, out_channels, cin_g, taps = weight.shape
        flat_weight = weight.reshape(num_kernels, -1)
        grad_out = grad_out.contiguous()
        need_cols, need_weight, need_kernel, need_spatial = ctx.needs_input_grad
        grad_cols = torch.empty_like(cols) if need_cols else None
        grad_weight = torch.zeros_like(flat_weight) if need_weight else None
        grad_kernel = torch.empty_like(kernel) if need_kernel else None
        grad_spatial = torch.empty_like(spatial) if need_spatial else None
        step = _chunk_size(batch, flat_weight.size(1))
        for start in range(0, batch, step):
            end = min(start + step, batch)
            n = end - start
            mixed = torch.mm(kernel[start:end], flat_weight).view(n, out_channels, cin_g, taps)
            g_out = grad_out[start:end]
            if grad_cols is not None:
                kernels = mixed * spatial[start:end].view(n, 1, 1, taps)
                torch.matmul(kernels.view(n, groups, out_channels // groups, -1).transpose(-1, -2), g_out,
                             out=grad_cols[start:end])
                del kernels
            if grad_weight is None and grad_kernel is None and grad_spatial is None:
                continue
            # dL/dW_b for this chunk, as [n, out, C/g, T]
            g_kernels = torch.matmul(g_out, cols[start:end].transpose(-1, -2)).view(n, out_channels, cin_g, taps)
            if grad_spatial is not None:
                grad_spatial[start:end] = (g_kernels * mixed).sum(dim=(1, 2))
            del mixed
            g_mixed = g_kernels.mul_(spatial[start:end].view(n, 1, 1, taps)).view(n, -1)
            if grad_kernel is not None:
                torch.mm(g_mixed, flat_weight.t(), out=grad_kernel[start:end])
            if grad_weight is not None:
                grad_weight.addmm_(kernel[start:end].t(), g_mixed)
        if grad_weight is not None:
            grad_weight = grad_weight.view_as(weight)
        return grad_cols, grad_weight, grad_kernel, grad_spatial


def mixed_kernel_matmul(cols: torch.Tensor, weight: torch.Tensor, kernel: Optional[torch.Tensor],
                        spatial: Optional[torch.Tensor]) -> torch.Tensor:
    """``MixedKernelMatmul`` with absent attentions (None) treated as all ones."""
    batch = cols.size(0)
    taps = weight.size(-1)
    if kernel is None:
        kernel = cols.new_ones(batch, weight.size(0))
    if spatial is None:
        spatial = cols.new_ones(batch, taps)
    return MixedKernelMatmul.apply(cols, weight, kernel, spatial)
