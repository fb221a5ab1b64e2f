"""ODConv: Omni-Dimensional Dynamic Convolution (Li, Zhou & Yao, ICLR 2022).

Plain PyTorch, importable without mmcv/mmdet. Parameter names and shapes follow the official
release (see shared/docs/odconv-reference.md) so its checkpoints load strictly:

    weight                [K, out, in/groups, k, k]
    attention.fc          1x1 conv in -> A (no bias), A = max(int(in * reduction), 16)
    attention.bn          norm over A (BatchNorm2d by default)
    attention.channel_fc  A -> in            (always)
    attention.filter_fc   A -> out           (absent for depthwise: in == groups == out)
    attention.spatial_fc  A -> k*k           (absent when k == 1)
    attention.kernel_fc   A -> K             (absent when K == 1)

Per sample b, with temperature T:
    W_b = sum_i alpha_w[b, i] * alpha_s[b] * weight[i]
    y_b = alpha_f[b] * conv2d(alpha_c[b] * x_b, W_b) (+ bias)
"""
import functools
import math
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.utils import _pair

from .conv_path_policy import choose_conv_path, columns_by_tap_copies, use_custom_autograd
from .mixed_kernel_conv import MixedKernelConv, MixKernels
from .tap_columns import ConvGeometry, TapColumns, conv_output_size, scale_taps, tap_views
from .conv_bn import fold_batch_norm
from .static_inflation import inflate_static_weight, is_static_weight, static_equivalent_attention

ATTENTION_NORMS = ('BN', 'GN', 'none')
CONV_PATHS = ('auto', 'per_sample', 'batched_matmul', 'expanded')


def _check_temperature(temperature: float) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise TypeError(f'temperature must be a number, got {type(temperature).__name__}')
    if not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f'temperature must be a finite number > 0, got {temperature}')
    return float(temperature)


class AttentionBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d for the pooled attention features that also trains at batch size 1.

    The pooled input has one value per channel and sample, so a single-sample training batch
    has no batch statistics (plain BatchNorm raises). That sample is then normalised with the
    running statistics, as in eval mode, and the running statistics are left unchanged.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Written out instead of super().forward() so the layer stays TorchScript-able.
        use_batch_stats = self.training and x.numel() > x.size(1)  # more than one value per channel
        momentum = 0.0
        if use_batch_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average, as nn.BatchNorm2d does
                momentum = 1.0 / float(self.num_batches_tracked.item())
            else:
                momentum = self.momentum
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            use_batch_stats, momentum, self.eps)


class ODConvAttention(nn.Module):
    """The four attentions of ODConv, computed from the globally pooled input.

    ``attention_norm`` picks the norm after ``fc``:

    * ``'BN'`` (default, the official choice; its checkpoints hold ``attention.bn``). Training
      with a batch of one sample, where the official layer raises, normalises that sample with
      the running statistics, as in eval mode (see :class:`AttentionBatchNorm2d`).
    * ``'GN'``: GroupNorm with one group, i.e. per-sample normalisation over the A attention
      channels; independent of the batch, so train and eval agree at any batch size.
    * ``'none'``: no norm (``fc`` then feeds the ReLU directly).

    The norm is stored as ``bn`` whatever its kind so that official key names stay valid.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int,
                 groups: int = 1,
                 reduction: float = 0.0625,
                 kernel_num: int = 4,
                 min_channels: int = 16,
                 attention_norm: str = 'BN'):
        super().__init__()
        if attention_norm not in ATTENTION_NORMS:
            raise ValueError(f'attention_norm must be one of {ATTENTION_NORMS}, got {attention_norm!r}')
        attention_channels = max(int(in_channels * reduction), min_channels)
        self.attention_channels = attention_channels
        self.kernel_size = kernel_size
        self.kernel_num = kernel_num
        self.temperature = 1.0

        self.fc = nn.Conv2d(in_channels, attention_channels, 1, bias=False)
        if attention_norm == 'BN':
            self.bn = AttentionBatchNorm2d(attention_channels)
        elif attention_norm == 'GN':
            self.bn = nn.GroupNorm(1, attention_channels)
        else:
            self.bn = nn.Identity()
        self.channel_fc = nn.Conv2d(attention_channels, in_channels, 1, bias=True)
        is_depthwise = in_channels == groups and in_channels == out_channels
        self.filter_fc = None if is_depthwise else nn.Conv2d(attention_channels, out_channels, 1, bias=True)
        self.spatial_fc = None if kernel_size == 1 else nn.Conv2d(
            attention_channels, kernel_size * kernel_size, 1, bias=True)
        self.kernel_fc = None if kernel_num == 1 else nn.Conv2d(attention_channels, kernel_num, 1, bias=True)
        self.init_weights()

    def init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    @torch.jit.unused
    def _normalise(self, z: torch.Tensor) -> torch.Tensor:
        """``bn(z)``, keeping batch-1 training after a SyncBN conversion.

        ``sync_bn='torch'`` / ``'mmcv'`` (and ``nn.SyncBatchNorm.convert_sync_batchnorm``)
        turn every BatchNorm into SyncBN, this one included: its statistics are then taken
        over the batch of all processes, as for the backbone's own norms. A SyncBN with a
        single sample in all (one process, batch 1) has no batch statistics and would raise;
        that sample is normalised with the running statistics, as AttentionBatchNorm2d does."""
        bn = self.bn
        if (self.training and bn.training and z.size(0) == 1 and not isinstance(bn, AttentionBatchNorm2d)
                and isinstance(bn, nn.modules.batchnorm._BatchNorm) and _world_size() == 1):
            return F.batch_norm(z, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
        return bn(z)

    @torch.jit.unused
    def _one_traced_call(self, x: torch.Tensor
                         ) -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor], Optional[torch.Tensor]]:
        return _traced_as_one_call(self, x)

    @staticmethod
    def _head(weight: torch.Tensor, bias: Optional[torch.Tensor], z: torch.Tensor) -> torch.Tensor:
        return F.linear(z, weight.flatten(1), bias)

    def forward(self, x: torch.Tensor
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor], Optional[torch.Tensor]]:
        """Returns (channel [B,in,1,1], filter [B,out,1,1], spatial [B,k,k], kernel [B,K]);
        an attention that the layer does not have is None (it would be all ones)."""
        if not torch.jit.is_scripting() and _is_fx_proxy(x):
            return self._one_traced_call(x)
        batch = x.size(0)
        # Global average pooling as sum / count: the gradient of a sum is a broadcast view,
        # which autograd adds into the input gradient in place, while mean's backward writes a
        # full input-sized tensor first. A trace takes mean: the count would be frozen into it
        # as a constant of the example input's size. Half-precision inputs take mean too: their
        # sum over a large map overflows (65504 in float16), mean accumulates in float32.
        if torch.jit.is_tracing() or x.dtype == torch.float16 or x.dtype == torch.bfloat16:
            pooled = x.mean(dim=(2, 3))
        else:
            pooled = x.sum(dim=(2, 3)) / (x.size(2) * x.size(3))
        # The 1x1 convs act on a pooled [B, C, 1, 1] tensor: computed as linear maps on [B, C],
        # which skip a conv's per-call set-up (the official layer runs them as convs; its
        # timings are in benchmarks/benchmark.py's "official" column).
        # One linear per head rather than one over concatenated weights, which would copy
        # every head's weights on each call.
        # fc has no bias in the official layer; mmcv's fuse_conv_bn gives it one when it folds
        # `bn` into it (and replaces `bn` by an Identity), so a bias that exists is applied.
        z = F.linear(pooled, self.fc.weight.flatten(1), self.fc.bias)
        if torch.jit.is_scripting():
            z = F.relu(self.bn(z))
        else:
            z = F.relu(self._normalise(z))
        inv_t = 1.0 / self.temperature
        head = self.channel_fc
        channel = torch.sigmoid(self._head(head.weight, head.bias, z) * inv_t)[:, :, None, None]
        filter_att: Optional[torch.Tensor] = None
        spatial: Optional[torch.Tensor] = None
        kernel: Optional[torch.Tensor] = None
        filter_fc, spatial_fc, kernel_fc = self.filter_fc, self.spatial_fc, self.kernel_fc
        if filter_fc is not None:
            filter_att = torch.sigmoid(self._head(filter_fc.weight, filter_fc.bias, z) * inv_t)[:, :, None, None]
        if spatial_fc is not None:
            spatial = torch.sigmoid(self._head(spatial_fc.weight, spatial_fc.bias, z) * inv_t).view(
                batch, self.kernel_size, self.kernel_size)
        if kernel_fc is not None:
            kernel = torch.softmax(self._head(kernel_fc.weight, kernel_fc.bias, z) * inv_t, dim=1)
        return channel, filter_att, spatial, kernel


class ODConv2d(nn.Module):
    """Omni-dimensional dynamic 2-D convolution, state-dict compatible with the official layer.

    Args mirror ``nn.Conv2d`` plus ``reduction`` (attention width ratio, A >= 16),
    ``kernel_num`` (K candidate kernels) and ``attention_norm`` (see :class:`ODConvAttention`).
    ``bias=True`` adds a learned per-output bias after the filter attention (the official
    layer has none, so checkpoints from it load only with ``bias=False``).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size,
                 stride=1,
                 padding=0,
                 dilation=1,
                 groups: int = 1,
                 bias: bool = False,
                 reduction: float = 0.0625,
                 kernel_num: int = 4,
                 attention_norm: str = 'BN',
                 padding_mode: str = 'zeros',
                 conv_path: str = 'auto'):
        super().__init__()
        kernel_size = _square_kernel(kernel_size)
        if padding_mode != 'zeros':
            raise ValueError(f"ODConv2d supports padding_mode='zeros' only, got {padding_mode!r} "
                             "(mmcv's ConvModule pads for other modes itself: pass padding_mode to it)")
        if conv_path not in CONV_PATHS:
            raise ValueError(f'ODConv2d: conv_path must be one of {CONV_PATHS}, got {conv_path!r}')
        padding = _explicit_padding(padding, kernel_size, _pair(stride), _pair(dilation))
        for name, value in (('in_channels', in_channels), ('out_channels', out_channels), ('groups', groups)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'ODConv2d: {name} must be a positive integer, got {value!r}')
        if in_channels % groups or out_channels % groups:
            raise ValueError(f'ODConv2d: in_channels ({in_channels}) and out_channels ({out_channels}) '
                             f'must both be divisible by groups ({groups})')
        if isinstance(kernel_num, bool) or not isinstance(kernel_num, int) or kernel_num < 1:
            raise ValueError(f'ODConv2d: kernel_num must be an integer >= 1, got {kernel_num!r}')
        if not isinstance(reduction, (int, float)) or not reduction > 0 or not math.isfinite(reduction):
            raise ValueError(f'ODConv2d: reduction must be a finite number > 0, got {reduction!r}')

        # The attributes nn.Conv2d has, so ConvModule and other code that inspects convs work.
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = (kernel_size, kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.groups = groups
        self.transposed = False
        self.output_padding = (0, 0)
        self.padding_mode = 'zeros'
        self.reduction = reduction
        self.kernel_num = kernel_num
        # How the dynamic conv is computed: 'auto' picks per device and input shape
        # (conv_path_policy.py); 'per_sample' / 'batched_matmul' / 'expanded' force one
        # formulation (benchmarks, tests, or a config's conv_cfg). All give the same numbers.
        self.conv_path = conv_path
        self.inflated_on_load = False  # set by each load: was a static conv weight inflated?

        self.attention = ODConvAttention(in_channels, out_channels, kernel_size, groups=groups,
                                         reduction=reduction, kernel_num=kernel_num,
                                         attention_norm=attention_norm)
        self.weight = nn.Parameter(torch.empty(kernel_num, out_channels, in_channels // groups,
                                               kernel_size, kernel_size))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter('bias', None)
        self.init_weights()

    def init_weights(self) -> None:
        """Official initialisation: each candidate kernel kaiming-normal (fan_out, relu)."""
        for i in range(self.kernel_num):
            nn.init.kaiming_normal_(self.weight[i], mode='fan_out', nonlinearity='relu')
        if self.bias is not None:
            nn.init.constant_(self.bias, 0)
        self.attention.init_weights()

    @property
    def temperature(self) -> float:
        return self.attention.temperature

    def _apply(self, fn, *args, **kwargs):  # (torch < 2.1 has no `recurse` argument)
        """Converts the 5-D kernel stack as K*out 4-D kernels, so that
        ``model.to(memory_format=torch.channels_last)`` (which refuses 5-D tensors) works. The
        stack keeps its official [K, out, in/g, k, k] shape and stays contiguous: it is never
        handed to a conv as it is (the per-sample kernels are built from it), and the input's
        memory format is what decides the conv's."""
        def fn_on_kernel_stack(t):
            if t.dim() != 5:
                return fn(t)
            return fn(t.flatten(0, 1)).contiguous().view(t.shape)
        return super()._apply(fn_on_kernel_stack, *args, **kwargs)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        """A static conv's ``weight`` [out, in/g, k, k] (with no attention keys beside it) is
        inflated into this layer's K kernels, with the attention that makes the layer compute
        exactly that static conv (see static_inflation.py). ``inflated_on_load`` records it for
        the load's log line. Any other shape is left to the usual size-mismatch error."""
        weight = state_dict.get(prefix + 'weight')
        attention_prefix = prefix + 'attention.'
        self.inflated_on_load = is_static_weight(weight, self) and not any(
            key.startswith(attention_prefix) for key in state_dict)
        if self.inflated_on_load:
            # The state dict handed to a module is the loader's own copy (torch and mmengine
            # alike); the children's dicts are cut from it after this returns.
            state_dict[prefix + 'weight'] = inflate_static_weight(weight, self)
            state_dict.update(static_equivalent_attention(self, attention_prefix))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def update_temperature(self, temperature: float) -> None:
        """Set the attention temperature T (a finite number > 0; not saved in checkpoints)."""
        self.attention.temperature = _check_temperature(temperature)

    def extra_repr(self) -> str:
        s = (f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, '
             f'stride={self.stride}, padding={self.padding}')
        if self.dilation != (1, 1):
            s += f', dilation={self.dilation}'
        if self.groups != 1:
            s += f', groups={self.groups}'
        if self.bias is None:
            s += ', bias=False'
        return s + f', kernel_num={self.kernel_num}, reduction={self.reduction}'

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise ValueError('ODConv2d expects a 4-D input [N, C, H, W], got a {}-D tensor of shape {}'
                             .format(x.dim(), list(x.shape)))
        if x.size(1) != self.in_channels:
            raise ValueError('ODConv2d expects {} input channels, got {} (input shape {})'
                             .format(self.in_channels, x.size(1), list(x.shape)))

    def _sample_numel(self, x: torch.Tensor) -> int:
        """Elements of one sample of x (x[0].numel(), which an empty batch does not have)."""
        return x.size(1) * x.size(2) * x.size(3)

    def _output_size(self, size: int, dim: int) -> int:
        return conv_output_size(size, self.kernel_size[dim], self.padding[dim], self.stride[dim], self.dilation[dim])

    def _output_hw(self, x: torch.Tensor) -> Tuple[int, int]:
        return self._output_size(x.size(2), 0), self._output_size(x.size(3), 1)

    def _choose_path(self, x: torch.Tensor) -> str:
        """Which formulation computes this input (all give the same numbers): the forced
        ``conv_path``, or under 'auto' what conv_path_policy.py picks for the device and shape.
        ('expanded' needs groups == 1; grouped convs take 'per_sample' instead.)"""
        # (a literal list: TorchScript cannot read a module-level tuple)
        if self.conv_path not in ['auto', 'per_sample', 'batched_matmul', 'expanded']:
            raise ValueError("ODConv2d: conv_path must be one of 'auto', 'per_sample', 'batched_matmul', "
                             "'expanded', got '{}'".format(self.conv_path))
        if self.conv_path != 'auto':
            if self.conv_path == 'expanded' and self.groups != 1:
                return 'per_sample'
            return self.conv_path
        out_h, out_w = self._output_hw(x)
        return choose_conv_path(x.device.type, torch.jit.is_tracing(), x.size(0), self.in_channels,
                                self.kernel_size[0], self.kernel_num, self.groups, out_h * out_w)

    @torch.jit.unused
    def _lean_matmul_pays(self, x: torch.Tensor, out_positions: int) -> bool:
        """MixedKernelConv for per-sample kernels that outweigh the activations, i.e. where
        the attentions are not folded into the kernels anyway: in training it keeps neither
        the columns nor (beyond batch K) the per-sample kernels for backward; in inference too
        it builds them block by block instead of all B at once. Where the policy allows custom
        autograd functions."""
        kernel_numel = self.weight[0].numel()
        return (self._custom_autograd(x)
                and kernel_numel > self._sample_numel(x)
                and kernel_numel > self.out_channels * out_positions)

    @torch.jit.unused
    def _mix_kernels_for_autograd(self, kernel: torch.Tensor, flat_weight: torch.Tensor) -> torch.Tensor:
        device_type = kernel.device.type
        if use_custom_autograd(device_type, _autocast_enabled(device_type)):
            return MixKernels.apply(kernel, flat_weight)
        return torch.mm(kernel, flat_weight)

    def _mixed_kernels(self, kernels: torch.Tensor, batch: int, spatial: Optional[torch.Tensor],
                       kernel: Optional[torch.Tensor]) -> torch.Tensor:
        """W_b = (sum_i alpha_w[b, i] W_i) * alpha_s[b] as [B or 1, out, in/g, k, k].

        The spatial attention does not depend on i, so the kernel mixing is one
        [B, K] x [K, N] matmul instead of a [B, K, N] product."""
        kh, kw = self.kernel_size
        if kernel is not None:
            flat_weight = kernels.view(self.kernel_num, -1)
            if torch.jit.is_scripting() or torch.jit.is_tracing() or not torch.is_grad_enabled():
                weight = torch.mm(kernel, flat_weight)
            else:
                weight = self._mix_kernels_for_autograd(kernel, flat_weight)
            weight = weight.view(batch, self.out_channels, self.in_channels // self.groups, kh, kw)
        else:
            weight = kernels  # [1, out, in/g, k, k], shared by the batch
        if spatial is not None:
            weight = weight * spatial.view(batch, 1, 1, kh, kw)
        return weight

    def _fold_attentions(self, x: torch.Tensor, weight: torch.Tensor, channel: torch.Tensor,
                         filter_att: Optional[torch.Tensor], out_positions: int
                         ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """Moves the channel / filter attention into the per-sample kernels where that is the
        cheaper place: scaling a kernel costs |W| multiplies per sample, scaling the input or
        the output costs one multiply per element (and a full-size temporary and its backward).
        Returns (input, kernels, filter attention still to apply to the output)."""
        batch = x.size(0)
        g = self.groups
        kernel_numel = self.weight[0].numel()
        fold_channel = kernel_numel <= self._sample_numel(x)
        # A kernel shared by the batch stays shared (one static conv) unless the channel
        # attention makes it per-sample anyway.
        keep_shared = weight.size(0) == 1 and batch > 1 and not fold_channel
        fold_filter = (filter_att is not None and not keep_shared
                       and kernel_numel <= self.out_channels * out_positions)
        if not fold_channel:
            x = x * channel
        if fold_channel or fold_filter:
            cin_g, cout_g = self.in_channels // g, self.out_channels // g
            kh, kw = self.kernel_size
            weight = weight.view(weight.size(0), g, cout_g, cin_g, kh, kw)
            if fold_channel:
                weight = weight * channel.view(batch, g, 1, cin_g, 1, 1)
            if fold_filter:
                assert filter_att is not None
                weight = weight * filter_att.view(batch, g, cout_g, 1, 1, 1)
                filter_att = None
            weight = weight.view(weight.size(0), self.out_channels, cin_g, kh, kw)
        return x, weight, filter_att

    def _per_sample_conv(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """The official formulation: per-sample kernels [B, out, in/g, k, k], one conv with the
        batch folded into the groups (a plain conv at batch 1)."""
        if weight.size(0) == 1:  # shared by the batch: an ordinary conv
            return F.conv2d(x, weight.reshape(weight.shape[1:]), None, self.stride, self.padding, self.dilation,
                            self.groups)
        return conv_per_sample(x, weight, self.stride, self.padding, self.dilation, self.groups)

    def _columns(self, x: torch.Tensor, spatial: Optional[torch.Tensor] = None) -> torch.Tensor:
        """im2col as [B, g, in/g * k*k, L], each tap's rows scaled by ``spatial`` [B, k*k] if
        given. A 1x1 conv needs none: its columns are the (strided) input itself. TorchScript
        and traced graphs stack tap slices, every size taken from a tensor's shape, so an
        exported graph reshapes with no -1, which onnxruntime cannot resolve for an empty
        batch. Eager mode takes TapColumns where the policy allows custom autograd functions
        (tap_columns.py), else F.unfold."""
        g = self.groups
        kh, kw = self.kernel_size
        if kh == 1 and kw == 1 and self.padding == (0, 0):
            if self.stride != (1, 1):
                x = x[:, :, ::self.stride[0], ::self.stride[1]]
            batch, channels, height, width = x.shape
            return scale_taps(x.reshape(batch, g, channels // g, height * width), spatial, 1)
        if torch.jit.is_scripting() or torch.jit.is_tracing():
            taps = self._tap_slices(x)  # [B, C, k*k, out_h, out_w]
            batch, channels, num_taps, out_h, out_w = taps.shape
            cols = taps.reshape(batch, g, channels // g * num_taps, out_h * out_w)
        elif self._custom_autograd(x):
            return self._eager_tap_columns(x, spatial).view(x.size(0), g, self.in_channels // g * kh * kw, -1)
        else:
            cols = F.unfold(x, (kh, kw), self.dilation, self.padding, self.stride)
            cols = cols.view(x.size(0), g, self.in_channels // g * kh * kw, cols.size(2))
        return scale_taps(cols, spatial, kh * kw)

    @torch.jit.unused
    def _custom_autograd(self, x: torch.Tensor) -> bool:
        return use_custom_autograd(x.device.type, _autocast_enabled(x.device.type))

    @torch.jit.unused
    def _geometry(self, x: torch.Tensor) -> ConvGeometry:
        """This conv's geometry for an input x, with the policy's choice of im2col for it."""
        device_type = x.device.type
        tap_copies = columns_by_tap_copies(device_type, _autocast_enabled(device_type), self._output_hw(x)[1])
        return ConvGeometry(self.kernel_size, self.stride, self.padding, self.dilation, tap_copies)

    @torch.jit.unused
    def _eager_tap_columns(self, x: torch.Tensor, spatial: Optional[torch.Tensor]) -> torch.Tensor:
        return TapColumns.apply(x, spatial, self._geometry(x))

    def _tap_slices(self, x: torch.Tensor) -> torch.Tensor:
        """unfold's columns as [B, C, k*k, out_h, out_w], stacked from tap slices."""
        return torch.stack(tap_views(x, self.kernel_size, self.padding, self.stride, self.dilation), dim=2)

    def _batched_matmul_conv(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """im2col + one batched matmul of the per-sample kernels [B, out, in/g*k*k] with the
        columns [B, in/g*k*k, L]. No op in it depends on the batch size (ONNX export)."""
        out_h, out_w = self._output_hw(x)
        weight = weight.reshape(weight.size(0), self.groups, self.out_channels // self.groups,
                                self.in_channels // self.groups * self.kernel_size[0] * self.kernel_size[1])
        out = torch.matmul(weight, self._columns(x))  # a shared [1, ...] kernel broadcasts
        return out.view(out.size(0), self.out_channels, out_h, out_w)  # the batch from a shape (see _columns)

    def _flat_spatial(self, spatial: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        """The spatial attention [B, k, k] as [B, T] per-tap factors (T = k*k)."""
        return spatial.reshape(spatial.size(0), self.kernel_size[0] * self.kernel_size[1]) if spatial is not None else None

    @torch.jit.unused
    def _lean_batched_matmul_conv(self, x: torch.Tensor, kernels: torch.Tensor, spatial: Optional[torch.Tensor],
                                  kernel: torch.Tensor) -> torch.Tensor:
        """The batched-matmul formulation through MixedKernelConv: same numbers, but beyond
        batch K the per-sample kernels are built block by block (and rebuilt in backward),
        never all at once, and backward keeps the input instead of its columns."""
        out_h, out_w = self._output_hw(x)
        kh, kw = self.kernel_size
        weight = kernels.view(self.kernel_num, self.out_channels, self.in_channels // self.groups, kh * kw)
        out = MixedKernelConv.apply(x, weight, kernel, self._flat_spatial(spatial), self._geometry(x), self.groups)
        return out.view(x.size(0), self.out_channels, out_h, out_w)

    def _expanded_conv(self, x: torch.Tensor, kernels: torch.Tensor, spatial: Optional[torch.Tensor],
                       kernel: Optional[torch.Tensor]) -> torch.Tensor:
        """Kernel-expanded formulation (groups == 1): the spatial attention scales the unfolded
        input columns, all K kernels run as one static matmul, and the kernel attention mixes
        their outputs. No per-sample kernel is ever built."""
        batch = x.size(0)
        kh, kw = self.kernel_size
        out_h, out_w = self._output_hw(x)
        cols = self._columns(x, self._flat_spatial(spatial))  # [B, 1, C*k*k, L]
        positions = cols.size(3)
        cols = cols[:, 0].transpose(0, 1).reshape(self.in_channels * kh * kw, batch * positions)
        out = torch.mm(kernels.view(self.kernel_num * self.out_channels, -1), cols)
        out = out.view(self.kernel_num, self.out_channels, batch, positions)
        if kernel is not None:
            out = torch.einsum('bk,kobl->bol', kernel, out)
        else:
            out = out[0].transpose(0, 1)
        return out.reshape(batch, self.out_channels, out_h, out_w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and _is_fx_proxy(x):
            return self._traced_forward(x)
        out = self._dynamic_conv(x, self.weight, self.bias)
        if not torch.jit.is_scripting():
            _count_for_mmcv_flops_counter(self, x, out)
        return out

    @torch.jit.unused
    def _traced_forward(self, x: torch.Tensor) -> torch.Tensor:
        """``torch.fx.symbolic_trace``: inside a traced model the layer is one call, as an
        nn.Conv2d is; a trace of the layer itself records the official computation."""
        if x.tracer.root is not self:
            return _traced_as_one_call(self, x)
        return self._official_conv(x)

    @torch.jit.unused
    def _official_conv(self, x: torch.Tensor) -> torch.Tensor:
        """The official layer's computation (reference page), with no branch on the input:
        per sample b, W_b = alpha_s[b] * sum_i alpha_w[b, i] W_i, and
        y_b = alpha_f[b] * conv(alpha_c[b] * x_b, W_b), all samples as one grouped conv."""
        channel, filter_att, spatial, kernel = self.attention(x)
        batch, g, k = x.size(0), self.groups, self.kernel_size[0]
        weight = self.weight.unsqueeze(0)  # [1, K, out, in/g, k, k]
        if self.attention.kernel_fc is not None:
            weight = weight * kernel.view(batch, self.kernel_num, 1, 1, 1, 1)
        if self.attention.spatial_fc is not None:
            weight = weight * spatial.view(batch, 1, 1, 1, k, k)
        weight = weight.sum(dim=1)  # [B or 1, out, in/g, k, k]
        weight = weight.expand(batch, -1, -1, -1, -1)
        out = conv_per_sample(x * channel, weight, self.stride, self.padding, self.dilation, g)
        if self.attention.filter_fc is not None:
            out = out * filter_att
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1)
        return out

    def conv_bn_eval_forward(self, bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
        """``bn(self(x))`` for a ``bn`` in eval mode, computed with ``bn`` folded into the kernel
        stack and the bias: mmcv's ``ConvModule(..., efficient_conv_bn_eval=True)`` runs this for
        ODConv (see ``__setattr__``). The per-output-channel BN scale multiplies every one of
        the K kernels; the filter attention and the conv commute with it."""
        kernels, bias = fold_batch_norm(self.weight, self.bias, bn, out_dim=1)
        return self._dynamic_conv(x, kernels, bias)

    def __setattr__(self, name, value):
        """mmcv's ConvModule with ``efficient_conv_bn_eval=True`` sets, for one eval-mode call,
        ``conv.forward = partial(efficient_conv_bn_eval_forward, norm, conv)``, whose weight
        arithmetic assumes a 4-D nn.Conv2d kernel. For ODConv that call is taken by
        ``conv_bn_eval_forward`` instead, which folds the norm into the 5-D kernel stack."""
        if (name == 'forward' and isinstance(value, functools.partial)
                and getattr(value.func, '__name__', '') == 'efficient_conv_bn_eval_forward'
                and len(value.args) == 2 and value.args[1] is self):
            value = functools.partial(_conv_bn_eval_call, self, value.args[0])
        super().__setattr__(name, value)

    def __delattr__(self, name):
        """Refuse what would remove the kernel stack. ``torch.nn.utils.spectral_norm`` (also
        through ``ConvModule(with_spectral_norm=True)``) and everything built on
        ``torch.nn.utils.parametrize`` (its spectral_norm, weight_norm, ...) delete ``weight``
        before they change anything else; spectral norm would treat dim 0 of the stack, the K
        candidate kernels, as the output channels. Refused there, the layer is left as it was."""
        if name == 'weight':
            raise TypeError('ODConv2d: its kernel stack `weight` [K, out, in/g, k, k] cannot be removed or '
                            're-parametrised (torch.nn.utils.spectral_norm, ConvModule(with_spectral_norm=True), '
                            'torch.nn.utils.parametrize and the parametrizations built on it): spectral '
                            'norm would treat dim 0, the K candidate kernels, as the output channels')
        super().__delattr__(name)

    def _dynamic_conv(self, x: torch.Tensor, kernels: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
        """The layer computed with the kernel stack ``kernels`` [K, out, in/g, k, k] and
        ``bias``: its own parameters in ``forward``, a following BatchNorm folded into them in
        ``conv_bn_eval_forward``."""
        self._check_input(x)
        channel, filter_att, spatial, kernel = self.attention(x)
        path = self._choose_path(x)
        out_h, out_w = self._output_hw(x)
        if x.size(0) == 0 and not torch.jit.is_tracing():
            # An empty batch (e.g. a mask head without positive RoIs): the empty output, tied
            # to the kernels and the attention so that autograd and DDP see them all used.
            out = x.new_zeros(0, self.out_channels, out_h, out_w) + kernels.sum() * 0 + channel.sum()
            if filter_att is not None:
                out = out + filter_att.sum()
            if spatial is not None:
                out = out + spatial.sum()
            if kernel is not None:
                out = out + kernel.sum()
        elif path == 'expanded':
            out = self._expanded_conv(x * channel, kernels, spatial, kernel)
        elif (path == 'batched_matmul' and kernel is not None and not torch.jit.is_scripting()
                and not torch.jit.is_tracing() and self._lean_matmul_pays(x, out_h * out_w)):
            out = self._lean_batched_matmul_conv(x * channel, kernels, spatial, kernel)
        else:
            weight = self._mixed_kernels(kernels, x.size(0), spatial, kernel)
            x, weight, filter_att = self._fold_attentions(x, weight, channel, filter_att, out_h * out_w)
            if path == 'batched_matmul':
                out = self._batched_matmul_conv(x, weight)
            else:
                out = self._per_sample_conv(x, weight)
        if filter_att is not None:
            out = out * filter_att
        if bias is not None:
            out = out + bias.view(1, -1, 1, 1)
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            # A channels_last input gets a channels_last output, as from nn.Conv2d, so that a
            # channels_last network stays so (the formulations above reshape the batch).
            out = out.contiguous(memory_format=torch.channels_last)
        return out


def conv_per_sample(x: torch.Tensor, weight: torch.Tensor, stride: Tuple[int, int], padding: Tuple[int, int],
                    dilation: Tuple[int, int], groups: int) -> torch.Tensor:
    """Each sample x[b] convolved with its own kernels weight[b] [out, in/g, k, k]: the batch
    folded into the groups of one conv, as the official layer computes."""
    batch, channels, height, width = x.size(0), x.size(1), x.size(2), x.size(3)
    out_channels = weight.size(1)
    weight = weight.reshape(batch * out_channels, weight.size(2), weight.size(3), weight.size(4))
    out = F.conv2d(x.reshape(1, batch * channels, height, width), weight, None, stride, padding, dilation,
                   groups * batch)
    return out.view(batch, out_channels, out.size(2), out.size(3))


# One call in an fx graph: its batch-dependent group count is no graph input (torch < 2.1's conv2d
# refuses a traced one).
torch.fx.wrap('conv_per_sample')


@torch.jit.unused
def _count_for_mmcv_flops_counter(layer: 'ODConv2d', x: torch.Tensor, out: torch.Tensor) -> None:
    """mmcv's ``get_model_complexity_info`` counts modules of the types it knows with forward
    hooks: it knows no ODConv2d, and the attention convs it hooks are applied as linear maps,
    so it would count 0 for every ODConv layer. While it counts (its ``__flops__`` counter sits
    on ``attention.fc``), this layer's MAdds (``utils/madds.py``) are added to that counter."""
    fc = layer.attention.fc
    if hasattr(fc, '__flops__'):
        from ..utils.madds import odconv_madds
        fc.__flops__ += int(sum(odconv_madds(layer, x, out).values()))


@torch.jit.unused
def _is_fx_proxy(x: torch.Tensor) -> bool:
    return isinstance(x, torch.fx.Proxy)


@torch.jit.unused
def _traced_as_one_call(module: nn.Module, x: torch.Tensor):
    """Under ``torch.fx.symbolic_trace`` of a model holding ``module``: record the module as one
    call in the graph, as fx records torch.nn layers, instead of tracing its input-dependent
    code. The traced model then runs it eagerly, and graph passes that look for module calls
    (mmengine's ``efficient_conv_bn_eval``) see a conv followed by its norm. Not for the trace's
    root, which has no path: ODConv2d traces its own body there (``_official_conv``)."""
    tracer = x.tracer
    return tracer.create_proxy('call_module', tracer.path_of_module(module), (x,), {})


@torch.jit.unused
def _conv_bn_eval_call(conv: 'ODConv2d', bn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One efficient conv + BN call set by mmcv's ConvModule. ConvModule deletes this override
    after the call; if the call raises, it is deleted here, so the layer never stays patched."""
    try:
        return conv.conv_bn_eval_forward(bn, x)
    except Exception:
        conv.__dict__.pop('forward', None)
        raise


def _world_size() -> int:
    import torch.distributed as dist
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


@torch.jit.unused
def _autocast_enabled(device_type: str) -> bool:
    """torch.is_autocast_enabled(device_type), which torch < 2.4 does not take."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: one query per device kind
        if device_type == 'cpu':
            return torch.is_autocast_cpu_enabled()
        return torch.is_autocast_enabled() if device_type == 'cuda' else False


def _explicit_padding(padding, kernel_size: int, stride: Tuple[int, int], dilation: Tuple[int, int]):
    """nn.Conv2d's string paddings as numbers: 'valid' is 0; 'same' (stride 1) is half the
    dilated kernel's reach, which must be symmetric."""
    if not isinstance(padding, str):
        return padding
    if padding == 'valid':
        return 0
    if padding != 'same':
        raise ValueError(f"ODConv2d: padding must be a number, a pair, 'same' or 'valid', got {padding!r}")
    if stride != (1, 1):
        raise ValueError(f"ODConv2d: padding='same' needs stride 1 (as nn.Conv2d), got stride={stride}")
    reach = [d * (kernel_size - 1) for d in dilation]
    if any(r % 2 for r in reach):
        raise ValueError(f"ODConv2d: padding='same' with kernel_size={kernel_size} and dilation={dilation} "
                         'would pad unevenly; give the padding as numbers')
    return (reach[0] // 2, reach[1] // 2)


def _square_kernel(kernel_size) -> int:
    if isinstance(kernel_size, (tuple, list)):
        if len(kernel_size) != 2 or kernel_size[0] != kernel_size[1]:
            raise ValueError(f'ODConv2d supports square kernels only, got kernel_size={tuple(kernel_size)}')
        kernel_size = kernel_size[0]
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1:
        raise ValueError(f'ODConv2d: kernel_size must be a positive integer, got {kernel_size!r}')
    return kernel_size


def _is_odconv(module: nn.Module) -> bool:
    # A torch.jit.script-ed ODConv2d is a RecursiveScriptModule that remembers its class name.
    return isinstance(module, ODConv2d) or getattr(module, 'original_name', None) == 'ODConv2d'


def odconv_layers(model: nn.Module) -> List[nn.Module]:
    """All ODConv2d layers inside ``model``, scripted ones included (unwraps nothing: DDP's
    ``.modules()`` sees through)."""
    return [m for m in model.modules() if _is_odconv(m)]


def set_temperature(model: nn.Module, temperature: float) -> int:
    """Set the attention temperature of every ODConv2d in ``model`` (also in a scripted model,
    which holds its own copy of the temperature); returns how many were set."""
    temperature = _check_temperature(temperature)
    layers = odconv_layers(model)
    for layer in layers:
        layer.attention.temperature = temperature
    return len(layers)
