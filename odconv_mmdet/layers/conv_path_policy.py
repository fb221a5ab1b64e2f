"""Which formulation computes an ODConv call: the one place where speed rules live.

All formulations give the same numbers (tests/test_conv_paths.py); this policy only picks the
fastest per device type and input shape. The measurements behind each rule, and the commands
that reproduce them, are in benchmarks/conv-path-policy.md.

Formulations (see ODConv2d): 'per_sample' (per-sample kernels, the batch folded into the groups
of one conv: the official one), 'batched_matmul' (im2col + a batched matmul of per-sample
kernels and columns), 'expanded' (all K kernels as one static matmul on tap-scaled columns,
outputs mixed by the kernel attention).

* CPU: fitted on the 2-core machine (benchmarks/conv-path-policy.md).
* CUDA (and any other device): no formulation has been timed against another there yet; the
  only CUDA figures (benchmarks/h100_*) show the per-sample grouped conv and the layer of then
  within a few per cent of each other. So: the per-sample conv (a kernel the batch shares, K = 1
  1x1, is then one static conv), built-in ops only (no custom autograd functions), and the
  batched matmul for traced graphs (the batch-independent graph).

TorchScript compiles choose_conv_path with the layer; it cannot read module globals, so the
CPU thresholds come from cpu_thresholds().
"""
from typing import NamedTuple


class CpuThresholds(NamedTuple):
    """Input channels C per output position L (of one sample) from which a formulation wins."""
    expanded_k1: int  # 'expanded' with K == 1 (any kernel size) when C >= this * L
    expanded: int  # 'expanded' with K > 1 (at batch > 1) when C >= this * L
    batched_matmul: int  # 'batched_matmul' for k x k convs at batch > 1 when C >= this * L
    tap_copy_width: int  # im2col by tap copies for outputs at least this wide (else F.unfold)


def cpu_thresholds() -> CpuThresholds:
    return CpuThresholds(3, 16, 3, 8)


def choose_conv_path(device_type: str, traced: bool, batch: int, in_channels: int, kernel_size: int,
                     kernel_num: int, groups: int, out_positions: int) -> str:
    """The formulation for one call under ``conv_path='auto'`` (L = ``out_positions`` of one
    sample, C = ``in_channels``)."""
    if traced:
        return 'batched_matmul'  # the only graph that does not depend on the batch size
    if device_type != 'cpu':
        return 'per_sample'
    thresholds = cpu_thresholds()
    # K == 1 (1x1 included, where the batch then shares one kernel: one matmul over all
    # samples' positions) at any batch; K > 1 at batch > 1 (at batch 1 the kernel mixing is a
    # single small matmul, and expanded would do K convs' work)
    if groups == 1 and (batch > 1 or kernel_num == 1):
        ratio = thresholds.expanded_k1 if kernel_num == 1 else thresholds.expanded
        if out_positions * ratio <= in_channels:
            return 'expanded'
    # 1x1 convs at any batch (a kernel the batch shares included: one broadcast matmul);
    # k x k convs at batch > 1 and low resolution
    if groups == 1 and (kernel_size == 1 or (batch > 1 and out_positions * thresholds.batched_matmul <= in_channels)):
        return 'batched_matmul'
    return 'per_sample'


def keep_per_sample_kernels(batch: int, kernel_num: int) -> bool:
    """Whether MixedKernelConv keeps the B per-sample kernels of a training call for the input
    gradient (instead of mixing them again block by block in backward): at batch <= K, where
    they are no larger than the K candidate kernels, the parameter itself."""
    return batch <= kernel_num


def columns_by_tap_copies(device_type: str, autocast: bool, out_width: int) -> bool:
    """im2col (and its adjoint) as one strided copy per kernel tap (tap_columns.py, a custom
    autograd function) rather than F.unfold / F.fold: on a CPU, where the output rows are long
    enough for each copy to move contiguous runs."""
    return use_custom_autograd(device_type, autocast) and out_width >= cpu_thresholds().tap_copy_width


def use_custom_autograd(device_type: str, autocast: bool) -> bool:
    """MixedKernelConv / MixKernels (kernels mixed block by block, rebuilt in backward): CPU
    only, where they were measured; never under autocast, whose per-op casts a custom
    autograd function does not get."""
    return device_type == 'cpu' and not autocast
