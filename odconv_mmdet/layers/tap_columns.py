"""im2col and its adjoint as one strided copy per kernel tap, the spatial attention applied on the way.

A k x k conv's columns hold, for each kernel tap t = (i, j), the input shifted by that tap:
one strided slice of the padded input. Copying the k*k slices into one buffer gives unfold's
columns; scaling each slice by a per-sample factor while copying gives the columns of ODConv's
spatial attention without a second pass over them. The adjoint adds each tap's rows back onto
its slice of a zero input (fold), scaled the same way. Both are plain strided tensor ops. Where
the output rows are short, each strided copy moves too few contiguous values and F.unfold /
F.fold (then a scaling pass) are faster: ``ConvGeometry.tap_copies`` says which to use (the
layer sets it from conv_path_policy.py; measurements: benchmarks/conv-path-policy.md).

Layout: columns [B, C, T, L] (T = k*k taps, L = out_h * out_w) flattened to [B, C*T, L], the
row order of unfold and of a [out, C, k, k] kernel flattened to [out, C*k*k].
"""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F

Pair = Tuple[int, int]


def conv_output_size(size: int, kernel_size: int, padding: int, stride: int, dilation: int) -> int:
    """Output length of a conv along one dimension (as nn.Conv2d). TorchScript-able."""
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


class ConvGeometry:
    """kernel size, stride, padding and dilation of a 2-D conv (pairs), and whether its columns
    are built by tap copies (else by F.unfold / F.fold)."""

    def __init__(self, kernel_size: Pair, stride: Pair, padding: Pair, dilation: Pair, tap_copies: bool = True):
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation
        self.tap_copies = tap_copies

    def unfold_args(self) -> dict:
        return dict(kernel_size=self.kernel_size, dilation=self.dilation, padding=self.padding, stride=self.stride)

    @property
    def taps(self) -> int:
        return self.kernel_size[0] * self.kernel_size[1]

    def output_hw(self, height: int, width: int) -> Pair:
        return tuple(conv_output_size(size, self.kernel_size[dim], self.padding[dim], self.stride[dim],
                                      self.dilation[dim]) for dim, size in enumerate((height, width)))

    def is_pointwise(self) -> bool:
        """A 1x1 conv without padding: its columns are the (strided) input itself."""
        return self.kernel_size == (1, 1) and self.padding == (0, 0)


def tap_views(x: torch.Tensor, kernel_size: Tuple[int, int], padding: Tuple[int, int], stride: Tuple[int, int],
              dilation: Tuple[int, int]) -> List[torch.Tensor]:
    """The k*k strided slices [B, C, out_h, out_w] of the zero-padded input, tap by tap
    (row-major). TorchScript-able."""
    (kh, kw), (ph, pw) = kernel_size, padding
    if ph != 0 or pw != 0:
        x = F.pad(x, [pw, pw, ph, ph])
    views: List[torch.Tensor] = []
    for tap in range(kh * kw):
        views.append(tap_view(x, tap, kernel_size, stride, dilation))
    return views


def tap_view(padded: torch.Tensor, tap: int, kernel_size: Tuple[int, int], stride: Tuple[int, int],
             dilation: Tuple[int, int]) -> torch.Tensor:
    """Tap (i, j)'s slice of an already padded input: it starts at i*d and stops (k-1-i)*d
    before the end. Every bound comes from the input's shape, so a traced graph stays valid
    for other sizes."""
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    i, j = tap // kw, tap % kw
    height, width = padded.size(2), padded.size(3)
    return padded[:, :, i * dh:height - (kh - 1 - i) * dh:sh, j * dw:width - (kw - 1 - j) * dw:sw]


def _views(x: torch.Tensor, geometry: ConvGeometry) -> List[torch.Tensor]:
    return tap_views(x, geometry.kernel_size, geometry.padding, geometry.stride, geometry.dilation)


def _per_sample(factors: torch.Tensor, tap: int) -> torch.Tensor:
    return factors[:, tap].view(-1, 1, 1, 1)


def scale_taps(cols: torch.Tensor, spatial: Optional[torch.Tensor], taps: int) -> torch.Tensor:
    """im2col columns [B, g, C/g * T, L] with each tap t's rows multiplied by spatial[b, t]
    (spatial [B, T]; None: all ones). TorchScript-able."""
    if spatial is None:
        return cols
    rows = cols.size(2)
    return (cols.view(cols.size(0), cols.size(1), rows // taps, taps, cols.size(3))
            * spatial.view(cols.size(0), 1, 1, taps, 1)).view_as(cols)


def _scale_flat(cols: torch.Tensor, spatial: Optional[torch.Tensor], taps: int) -> torch.Tensor:
    """scale_taps for columns [B, C*T, L]."""
    return scale_taps(cols.unsqueeze(1), spatial, taps).squeeze(1)


def tap_columns(x: torch.Tensor, geometry: ConvGeometry, spatial: Optional[torch.Tensor] = None) -> torch.Tensor:
    """unfold(x) as [B, C*T, L], each tap t's rows multiplied by spatial[b, t] (spatial [B, T];
    None: unscaled). Not differentiable by autograd itself: MixedKernelConv and TapColumns
    give its gradients."""
    batch, channels, height, width = x.shape
    out_h, out_w = geometry.output_hw(height, width)
    if geometry.is_pointwise() and spatial is None:
        if geometry.stride != (1, 1):
            x = x[:, :, ::geometry.stride[0], ::geometry.stride[1]]
        return x.reshape(batch, channels, out_h * out_w)
    if not geometry.tap_copies:
        return _scale_flat(F.unfold(x, **geometry.unfold_args()), spatial, geometry.taps)
    cols = x.new_empty(batch, channels, geometry.taps, out_h, out_w)
    for tap, view in enumerate(_views(x, geometry)):
        if spatial is None:
            cols[:, :, tap].copy_(view)
        else:
            torch.mul(view, _per_sample(spatial, tap), out=cols[:, :, tap])
    return cols.view(batch, channels * geometry.taps, out_h * out_w)


def fold_tap_columns(cols: torch.Tensor, input_shape: torch.Size, geometry: ConvGeometry,
                     spatial: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The adjoint of tap_columns: columns [B, C*T, L] (or any view of that size) summed back
    onto the input positions they were taken from, each tap scaled by spatial[b, t]. Returns a
    contiguous tensor of ``input_shape``."""
    batch, channels, height, width = input_shape
    out_h, out_w = geometry.output_hw(height, width)
    if geometry.is_pointwise() and spatial is None and geometry.stride == (1, 1):
        return cols.reshape(input_shape)
    if not geometry.tap_copies:
        cols = _scale_flat(cols.reshape(batch, channels * geometry.taps, out_h * out_w), spatial, geometry.taps)
        return F.fold(cols, (height, width), **geometry.unfold_args())
    ph, pw = geometry.padding
    grad = cols.new_zeros(batch, channels, height + 2 * ph, width + 2 * pw)
    cols = cols.reshape(batch, channels, geometry.taps, out_h, out_w)
    for tap in range(geometry.taps):
        # each view taken after the previous tap's in-place add (double backward records them)
        view = tap_view(grad, tap, geometry.kernel_size, geometry.stride, geometry.dilation)
        if spatial is None:
            view.add_(cols[:, :, tap])
        else:
            view.addcmul_(cols[:, :, tap], _per_sample(spatial, tap))
    if ph or pw:
        grad = grad[:, :, ph:ph + height, pw:pw + width].contiguous()
    return grad


def tap_dot(cols: torch.Tensor, x: torch.Tensor, geometry: ConvGeometry) -> torch.Tensor:
    """[B, T]: for each sample and tap, the sum over channels and positions of ``cols`` (a
    [B, C*T, L] column gradient) times x's columns of that tap, without building x's columns.
    The gradient of tap_columns' spatial factors."""
    batch, channels, height, width = x.shape
    out_h, out_w = geometry.output_hw(height, width)
    if not geometry.tap_copies:
        x_cols = F.unfold(x, **geometry.unfold_args()).view(batch, channels, geometry.taps, out_h * out_w)
        return (cols.reshape(x_cols.shape) * x_cols).sum(dim=(1, 3))
    cols = cols.reshape(batch, channels, geometry.taps, out_h, out_w)
    return torch.stack([(cols[:, :, tap] * view).sum(dim=(1, 2, 3))
                        for tap, view in enumerate(_views(x, geometry))], dim=1)


class TapColumns(torch.autograd.Function):
    """tap_columns with autograd: the input's gradient is folded from the columns'
    (fold_tap_columns), the spatial factors' taken by tap_dot. Its backward is made of differentiable ops, so
    second-order gradients go through it."""

    @staticmethod
    def forward(ctx, x, spatial, geometry):
        ctx.save_for_backward(x, spatial)
        ctx.geometry = geometry
        cols = tap_columns(x, geometry, spatial)
        if geometry.is_pointwise() and spatial is None:  # a view of x, which a Function may not return
            cols = cols.clone()
        return cols

    @staticmethod
    def backward(ctx, grad):
        x, spatial = ctx.saved_tensors
        grad_x = fold_tap_columns(grad, x.shape, ctx.geometry, spatial) if ctx.needs_input_grad[0] else None
        grad_spatial = None
        if spatial is not None and ctx.needs_input_grad[1]:
            grad_spatial = tap_dot(grad, x, ctx.geometry)
        return grad_x, grad_spatial, None
