"""Per-sample dynamic conv that keeps neither the per-sample kernels (beyond batch K) nor the im2col columns.

With per-sample kernels W_b = (sum_i a[b, i] W_i) * s[b] (s scales each kernel tap), the plain
formulation builds W_b for the whole batch at once, and autograd keeps it for the backward pass
and builds more tensors of that size in it: B x |W| floats each (ResNet-50 stage 4, 3x3,
batch 8: 75 MB), far more than the activations of such deep, low-resolution layers. This
function instead

* moves the tap scaling onto the im2col columns, (W * s) @ cols == W @ (s * cols), which are
  the smaller side here, and applies it while the columns are copied (tap_columns.py);
* builds the mixed kernels block by block, at most ``CHUNK_FLOATS`` values at a time, into one
  reused buffer (on a CPU every fresh large allocation is paid again in page faults);
* blocks over output channels (forward, weight gradients) or input columns (input gradient),
  so each block's mixing reads its slice of the K candidate kernels once for the whole batch
  (blocking over samples would re-read all K kernels for every sample);
* saves only its inputs (the input, not its k*k times larger columns) and rebuilds the
  columns and the mixed kernels in backward, where the input gradient is folded straight from
  the column gradient; at batch <= K, where the B mixed kernels are no larger than the K
  candidate kernels, it keeps them for the input gradient instead.

Plain PyTorch; ODConv2d uses it in eager mode, in training and inference (TorchScript and
tracing see the plain formulation, which computes the same numbers). ``MixKernels`` at the
end is the plain [B, K] x [K, N] kernel mixing with a better backward at batch 1.
"""
import torch

from .conv_path_policy import keep_per_sample_kernels
from .tap_columns import fold_tap_columns, tap_columns, tap_dot

CHUNK_FLOATS = 1 << 21  # 8 MB of float32 mixed kernels per block: clear of mmap-sized allocations


def _block(length: int, numel_per_unit: int) -> int:
    """How many of `length` units (rows or columns) one block holds."""
    return max(1, min(length, CHUNK_FLOATS // max(numel_per_unit, 1)))


def _output_channel_blocks(groups: int, out_g: int, step: int):
    """(group, first, end) of consecutive output-channel blocks of at most `step` channels,
    none crossing a group boundary."""
    for group in range(groups):
        for start in range(0, out_g, step):
            yield group, group * out_g + start, group * out_g + min(start + step, out_g)


def _blocked_column_gradient(grad_cols, flat_weight, kernel, grad_out):
    """grad_cols[b, g] = W_b[g]^T @ grad_out[b, g], the per-sample kernels W_b mixed block by
    block of input columns (grad_cols [B, g, rows, L], flat_weight [K, out, rows], grad_out
    [B, g, out/g, L])."""
    batch, groups, rows, _ = grad_cols.shape
    num_kernels = kernel.size(1)
    out_g = grad_out.size(2)
    # (a block of columns is strided in the weight: reshape copies it, K x out/g x step)
    step = _block(rows, max(batch, num_kernels) * out_g)
    buffer = grad_cols.new_empty(batch * out_g * step)
    copy_buffer = grad_cols.new_empty(num_kernels * out_g * step) if step < rows else None
    for group in range(groups):
        first = group * out_g
        for start in range(0, rows, step):
            end = min(start + step, rows)
            block = flat_weight[:, first:first + out_g, start:end]
            if copy_buffer is not None:  # columns of a row-major weight: gather them once
                block = copy_buffer[:block.numel()].view_as(block).copy_(block)
            block = block.reshape(num_kernels, -1)
            mixed = torch.mm(kernel, block, out=buffer[:batch * block.size(1)].view(batch, -1))
            grad_cols[:, group, start:end] = torch.bmm(
                mixed.view(batch, out_g, end - start).transpose(1, 2), grad_out[:, group])


class MixedKernelConv(torch.autograd.Function):
    """out[b] = conv(x[b], W_b), W_b = (sum_i kernel[b, i] weight[i]) * spatial[b] per tap.

    Shapes: x [B, C, H, W]; weight [K, out, C/g, T] (T = k*k taps); kernel [B, K]; spatial
    [B, T] or None (all ones); ``geometry`` the conv's ConvGeometry, ``groups`` its groups.
    Returns [B, out, L] (L = out_h * out_w).
    """

    @staticmethod
    def forward(ctx, x, weight, kernel, spatial, geometry, groups):
        batch = x.size(0)
        num_kernels, out_channels, cin_g, taps = weight.shape
        rows = cin_g * taps
        out_g = out_channels // groups
        cols = tap_columns(x, geometry, spatial)
        positions = cols.size(2)
        cols = cols.view(batch, groups, rows, positions)
        flat_weight = weight.reshape(num_kernels, out_channels, rows)
        out = x.new_empty(batch, out_channels, positions)
        ctx.kernels = None  # the per-sample kernels, where the policy keeps them for backward
        if keep_per_sample_kernels(batch, num_kernels) and (ctx.needs_input_grad[0] or ctx.needs_input_grad[3]):
            kernels = torch.mm(kernel, flat_weight.view(num_kernels, -1)).view(batch, groups, out_g, rows)
            for group in range(groups):
                out[:, group * out_g:(group + 1) * out_g] = torch.bmm(kernels[:, group], cols[:, group])
            ctx.kernels = kernels
        else:
            step = _block(out_g, batch * rows)
            buffer = x.new_empty(batch * step * rows)
            for group, first, end in _output_channel_blocks(groups, out_g, step):
                block = flat_weight[:, first:end].reshape(num_kernels, -1)
                mixed = torch.mm(kernel, block, out=buffer[:batch * block.size(1)].view(batch, -1))
                out[:, first:end] = torch.bmm(mixed.view(batch, end - first, rows), cols[:, group])
        ctx.save_for_backward(x, weight, kernel, spatial)
        ctx.geometry, ctx.groups = geometry, groups
        return out

    @staticmethod
    def backward(ctx, grad_out):
        if torch.is_grad_enabled():  # backward(create_graph=True): its in-place blocks are not differentiable
            raise RuntimeError('ODConv2d: second-order gradients are not supported through the memory-lean '
                               "conv (MixedKernelConv); build the layer with conv_path='per_sample' "
                               "or 'expanded' to differentiate twice")
        x, weight, kernel, spatial = ctx.saved_tensors
        geometry, groups = ctx.geometry, ctx.groups
        batch = x.size(0)
        num_kernels, out_channels, cin_g, taps = weight.shape
        rows = cin_g * taps
        out_g = out_channels // groups
        positions = grad_out.size(2)
        flat_weight = weight.reshape(num_kernels, out_channels, rows)
        grad_out = grad_out.contiguous()
        grad_groups = grad_out.view(batch, groups, out_g, positions)
        need_x, need_weight, need_kernel, need_spatial = ctx.needs_input_grad[:4]
        need_spatial = need_spatial and spatial is not None
        grad_x = grad_weight = grad_kernel = grad_spatial = None

        if need_weight or need_kernel:
            # dL/dW_b = grad_out[b] @ scaled cols[b]^T, blocked over output channels; then
            # dL/dkernel[b, i] = <dL/dW_b, W_i> and dL/dW_i = sum_b kernel[b, i] dL/dW_b.
            scaled = tap_columns(x, geometry, spatial).view(batch, groups, rows, positions)
            grad_weight = weight.new_empty(num_kernels, out_channels, rows) if need_weight else None
            grad_kernel = kernel.new_zeros(kernel.shape) if need_kernel else None
            step = _block(out_g, batch * rows)
            buffer = x.new_empty(batch * step * rows)
            for group, first, end in _output_channel_blocks(groups, out_g, step):
                g_mixed = torch.bmm(grad_out[:, first:end], scaled[:, group].transpose(1, 2),
                                    out=buffer[:batch * (end - first) * rows].view(batch, end - first, rows))
                g_mixed = g_mixed.view(batch, -1)
                block = flat_weight[:, first:end].reshape(num_kernels, -1)
                if grad_kernel is not None:
                    grad_kernel.addmm_(g_mixed, block.t())
                if grad_weight is not None:
                    target = grad_weight[:, first:end].view(num_kernels, -1)
                    if batch == 1:  # an outer product: BLAS handles a [K, 1] x [1, N] mm poorly
                        torch.mul(kernel.view(num_kernels, 1), g_mixed, out=target)
                    else:
                        torch.mm(kernel.t(), g_mixed, out=target)
            if grad_weight is not None:
                grad_weight = grad_weight.view_as(weight)
            del scaled, buffer  # before the input gradient's buffers

        if need_x or need_spatial:
            # dL/d(scaled cols) = W_b^T @ grad_out[b], blocked over input columns.
            grad_scaled = x.new_empty(batch, groups, rows, positions)
            if ctx.kernels is not None:
                for group in range(groups):
                    grad_scaled[:, group] = torch.bmm(ctx.kernels[:, group].transpose(1, 2), grad_groups[:, group])
                ctx.kernels = None
            else:
                _blocked_column_gradient(grad_scaled, flat_weight, kernel, grad_groups)
            # the spatial factors' gradient from the unscaled columns, the input's by folding
            if need_spatial:
                grad_spatial = tap_dot(grad_scaled, x, geometry)
            if need_x:
                grad_x = fold_tap_columns(grad_scaled, x.shape, geometry, spatial)
        return grad_x, grad_weight, grad_kernel, grad_spatial, None, None


class MixKernels(torch.autograd.Function):
    """kernel [B, K] @ weight [K, N], with a backward that BLAS handles well at batch 1.

    Autograd's matmul backward computes dL/dweight as a [K, 1] x [1, N] product there, a
    rank-1 matmul that BLAS runs far below memory speed; an elementwise outer product does it
    in one pass."""

    @staticmethod
    def forward(ctx, kernel, weight):
        ctx.save_for_backward(kernel, weight)
        return torch.mm(kernel, weight)

    @staticmethod
    def backward(ctx, grad):
        kernel, weight = ctx.saved_tensors
        grad_kernel = torch.mm(grad, weight.t()) if ctx.needs_input_grad[0] else None
        grad_weight = None
        if ctx.needs_input_grad[1]:
            if kernel.size(0) == 1:
                grad_weight = kernel.view(-1, 1) * grad
            else:
                grad_weight = torch.mm(kernel.t(), grad)
        return grad_kernel, grad_weight
