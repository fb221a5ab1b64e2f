"""How an ODConv call is computed: the one place where speed rules live.

All ways give the same numbers (tests/test_conv_paths.py). The measurements behind each CPU rule,
and the commands that reproduce them, are in benchmarks/conv-path-policy.md.

* 'per_sample': the official computation (ODConv2d.official_conv), the batch folded into the
  groups of one conv. What every device but the CPU runs: nothing else has been timed on a GPU.
* 'batched_matmul' (matmul_formulations.py): im2col and one batched matmul with the per-sample
  kernels. Traced graphs take it on every device: with per-sample kernels it is the only graph
  that does not depend on the batch size (the per-sample conv freezes groups = B into it).
* 'shared_matmul' (shared_matmul.py): no per-sample kernel; the K kernels as one matmul shared by
  the batch, every attention applied to activations. The CPU takes it at small maps and large
  batches (shared_matmul_pays: the pretraining shapes); traced graphs and other devices never do.
* On the CPU the channel and filter attentions may scale the per-sample kernels instead of the
  activations (folded_attentions).

TorchScript compiles these functions with the layer (it cannot read module globals, hence the
literal thresholds).
"""
from typing import Tuple


def batched_matmul_pays(batch: int, in_channels: int, kernel_size: int, groups: int, out_positions: int) -> bool:
    """CPU, at batch > 1: 1x1 convs, and k x k convs with at most C / 3 output positions L."""
    return groups == 1 and batch > 1 and (kernel_size == 1 or out_positions * 3 <= in_channels)


def shared_matmul_pays(batch: int, out_channels: int, kernel_size: int, kernel_num: int, groups: int,
                       out_positions: int) -> bool:
    """CPU, at batch > 1: k x k convs (k > 1) where L * K < out. The shared matmul costs K times
    a static conv's multiply-adds; the per-sample kernels cost B kernels written, read and
    differentiated, which outweighs that only where a sample has few output positions L."""
    return groups == 1 and batch > 1 and kernel_size > 1 and out_positions * kernel_num < out_channels


def choose_conv_path(device_type: str, traced: bool, batch: int, in_channels: int, out_channels: int,
                     kernel_size: int, kernel_num: int, groups: int, out_positions: int) -> str:
    """The formulation for one call under ``conv_path='auto'`` (L = ``out_positions`` of one
    sample, C = ``in_channels``)."""
    if traced:  # a kernel the batch shares (K == 1, 1x1) is one static conv, batch-independent too
        return 'per_sample' if kernel_size == 1 and kernel_num == 1 else 'batched_matmul'
    if device_type == 'cpu':
        if shared_matmul_pays(batch, out_channels, kernel_size, kernel_num, groups, out_positions):
            return 'shared_matmul'
        if batched_matmul_pays(batch, in_channels, kernel_size, groups, out_positions):
            return 'batched_matmul'
    return 'per_sample'


def folded_attentions(device_type: str, traced: bool, batch: int, kernel_numel: int, sample_in_numel: int,
                      sample_out_numel: int, shared_kernel: bool, has_channel: bool = True) -> Tuple[bool, bool]:
    """CPU: whether the (channel, filter) attention scales the per-sample kernels instead of the
    input (output): where a kernel has at most as many elements as one sample's input (output),
    scaling it is cheaper than a pass over the activations and its backward. A kernel the batch
    shares stays one static conv unless the channel attention makes it per-sample anyway."""
    if device_type != 'cpu' or traced:
        return False, False
    fold_channel = has_channel and kernel_numel <= sample_in_numel
    keep_shared = shared_kernel and batch > 1 and not fold_channel
    return fold_channel, not keep_shared and kernel_numel <= sample_out_numel
