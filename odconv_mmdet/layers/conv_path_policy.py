"""Which formulation computes an ODConv call: the one place where speed rules live.

All formulations give the same numbers (tests/test_conv_paths.py); the measurements behind each
rule, and the commands that reproduce them, are in benchmarks/conv-path-policy.md.

* 'per_sample': the official computation (ODConv2d.official_conv), the batch folded into the
  groups of one conv. What every device but the CPU runs: no other formulation has been timed
  on a GPU.
* 'batched_matmul' (matmul_formulations.py): im2col and one batched matmul with the per-sample
  kernels. Traced graphs take it on every device: the only graph with per-sample kernels that
  does not depend on the batch size (the per-sample conv freezes groups = B into it).
* 'expanded' (matmul_formulations.py, groups == 1): all K kernels as one static matmul on the
  tap-scaled columns, their outputs mixed by the kernel attention.

TorchScript compiles choose_conv_path with the layer (it cannot read module globals, hence the
literal thresholds).
"""


def expanded_pays(batch: int, in_channels: int, kernel_num: int, groups: int, out_positions: int) -> bool:
    """CPU: few output positions L per input channel C. K == 1 at any batch (3 L <= C); K > 1 at
    batch > 1 only (16 L <= C): at batch 1 the kernel mixing is one small matmul."""
    if groups != 1 or (batch == 1 and kernel_num > 1):
        return False
    return out_positions * (3 if kernel_num == 1 else 16) <= in_channels


def batched_matmul_pays(batch: int, in_channels: int, kernel_size: int, groups: int, out_positions: int) -> bool:
    """CPU: 1x1 convs at any batch; k x k convs at batch > 1 and 3 L <= C."""
    return groups == 1 and (kernel_size == 1 or (batch > 1 and out_positions * 3 <= in_channels))


def choose_conv_path(device_type: str, traced: bool, batch: int, in_channels: int, kernel_size: int,
                     kernel_num: int, groups: int, out_positions: int) -> str:
    """The formulation for one call under ``conv_path='auto'`` (L = ``out_positions`` of one
    sample, C = ``in_channels``)."""
    if traced:  # a kernel the batch shares (K == 1, 1x1) is one static conv, batch-independent too
        return 'per_sample' if kernel_size == 1 and kernel_num == 1 else 'batched_matmul'
    if device_type != 'cpu':
        return 'per_sample'
    if expanded_pays(batch, in_channels, kernel_num, groups, out_positions):
        return 'expanded'
    if batched_matmul_pays(batch, in_channels, kernel_size, groups, out_positions):
        return 'batched_matmul'
    return 'per_sample'
