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
import math
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.utils import _pair

ATTENTION_NORMS = ('BN', 'GN', 'none')


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

    def forward(self, x: torch.Tensor
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor], Optional[torch.Tensor]]:
        """Returns (channel [B,in,1,1], filter [B,out,1,1], spatial [B,k,k], kernel [B,K]);
        an attention that the layer does not have is None (it would be all ones)."""
        batch = x.size(0)
        # The 1x1 convs act on a pooled [B, C, 1, 1] tensor: computed as linear maps on [B, C],
        # and the (up to) four heads as one matmul over their concatenated weights. Measured:
        # the separate tiny convs cost as much as the layer's main convolution.
        z = F.linear(x.mean(dim=(2, 3)), self.fc.weight.flatten(1))
        z = F.relu(self.bn(z))
        weights: List[torch.Tensor] = []
        biases: List[torch.Tensor] = []
        sizes: List[int] = []
        filter_fc, spatial_fc, kernel_fc = self.filter_fc, self.spatial_fc, self.kernel_fc
        for head in (self.channel_fc, filter_fc, spatial_fc, kernel_fc):
            if head is not None:
                bias = head.bias
                assert bias is not None  # every head has one; tells TorchScript so
                weights.append(head.weight.flatten(1))
                biases.append(bias)
                sizes.append(head.weight.size(0))
        logits = F.linear(z, torch.cat(weights), torch.cat(biases)) / self.temperature
        heads = torch.split(logits, sizes, dim=1)
        channel = torch.sigmoid(heads[0]).view(batch, -1, 1, 1)
        filter_att: Optional[torch.Tensor] = None
        spatial: Optional[torch.Tensor] = None
        kernel: Optional[torch.Tensor] = None
        i = 1
        if filter_fc is not None:
            filter_att = torch.sigmoid(heads[i]).view(batch, -1, 1, 1)
            i += 1
        if spatial_fc is not None:
            spatial = torch.sigmoid(heads[i]).view(batch, self.kernel_size, self.kernel_size)
            i += 1
        if kernel_fc is not None:
            kernel = torch.softmax(heads[i], dim=1)
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
                 attention_norm: str = 'BN'):
        super().__init__()
        kernel_size = _square_kernel(kernel_size)
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
        # How the dynamic conv is computed: 'auto' picks per input shape (see _use_expanded);
        # 'per_sample' / 'expanded' force one formulation (benchmarks, tests). Same numbers.
        self.conv_path = 'auto'

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

    def _output_size(self, size: int, dim: int) -> int:
        k = self.kernel_size[dim]
        return (size + 2 * self.padding[dim] - self.dilation[dim] * (k - 1) - 1) // self.stride[dim] + 1

    def _use_expanded(self, x: torch.Tensor) -> bool:
        # Per-sample kernels cost B*K*|W| memory traffic whatever the feature size; the
        # kernel-expanded form costs K x a static conv's FLOPs. Measured on the 2-core CPU
        # (fwd+bwd, batch 8 and 2, C 32-256): expanded wins only when a sample has few output
        # positions for its channels (L <= C/16 with K > 1, L <= C/4 with K == 1: the deepest,
        # lowest-resolution stages). Grouped convs always use per-sample kernels.
        if self.conv_path != 'auto':
            return self.conv_path == 'expanded' and self.groups == 1
        if self.groups != 1:
            return False
        positions = self._output_size(x.size(2), 0) * self._output_size(x.size(3), 1)
        return positions * (4 if self.kernel_num == 1 else 16) <= self.in_channels

    def _per_sample_conv(self, x: torch.Tensor, spatial: Optional[torch.Tensor],
                         kernel: Optional[torch.Tensor]) -> torch.Tensor:
        """The official formulation: build W_b per sample, run one conv with the batch folded
        into the groups."""
        batch, _, height, width = x.shape
        kh, kw = self.kernel_size
        # W_b = (sum_i alpha_w[b, i] W_i) * alpha_s[b]: the spatial attention does not depend on
        # i, so the kernel mixing is one [B, K] x [K, N] matmul instead of a [B, K, N] product.
        if kernel is not None:
            weight = torch.mm(kernel, self.weight.view(self.kernel_num, -1)).view(
                batch, self.out_channels, self.in_channels // self.groups, kh, kw)
        else:
            weight = self.weight  # [1, out, in/g, k, k], shared by the batch
        if spatial is not None:
            weight = weight * spatial.view(batch, 1, 1, kh, kw)
        weight = weight.expand(batch, -1, -1, -1, -1).reshape(
            batch * self.out_channels, self.in_channels // self.groups, kh, kw)
        out = F.conv2d(x.reshape(1, batch * self.in_channels, height, width), weight, None,
                       self.stride, self.padding, self.dilation, self.groups * batch)
        return out.view(batch, self.out_channels, out.size(-2), out.size(-1))

    def _expanded_conv(self, x: torch.Tensor, spatial: Optional[torch.Tensor],
                       kernel: Optional[torch.Tensor]) -> torch.Tensor:
        """Kernel-expanded formulation (groups == 1): the spatial attention scales the unfolded
        input columns, all K kernels run as one static matmul, and the kernel attention mixes
        their outputs. No per-sample kernel is ever built."""
        batch = x.size(0)
        kh, kw = self.kernel_size
        out_h, out_w = self._output_size(x.size(2), 0), self._output_size(x.size(3), 1)
        cols = F.unfold(x, (kh, kw), self.dilation, self.padding, self.stride)  # [B, C*k*k, L]
        if spatial is not None:
            cols = (cols.view(batch, self.in_channels, kh * kw, -1)
                    * spatial.view(batch, 1, kh * kw, 1)).view(batch, self.in_channels * kh * kw, -1)
        positions = cols.size(2)
        cols = cols.transpose(0, 1).reshape(self.in_channels * kh * kw, batch * positions)
        out = torch.mm(self.weight.view(self.kernel_num * self.out_channels, -1), cols)
        out = out.view(self.kernel_num, self.out_channels, batch, positions)
        if kernel is not None:
            out = torch.einsum('bk,kobl->bol', kernel, out)
        else:
            out = out[0].transpose(0, 1)
        return out.reshape(batch, self.out_channels, out_h, out_w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        channel, filter_att, spatial, kernel = self.attention(x)
        x = x * channel
        batch, _, height, width = x.shape
        if spatial is None and kernel is None:
            # 1x1 with K == 1: every sample shares the static kernel.
            out = F.conv2d(x, self.weight[0], None, self.stride, self.padding, self.dilation, self.groups)
        elif self._use_expanded(x):
            out = self._expanded_conv(x, spatial, kernel)
        else:
            out = self._per_sample_conv(x, spatial, kernel)
        if filter_att is not None:
            out = out * filter_att
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1)
        return out


def _square_kernel(kernel_size) -> int:
    if isinstance(kernel_size, (tuple, list)):
        if len(kernel_size) != 2 or kernel_size[0] != kernel_size[1]:
            raise ValueError(f'ODConv2d supports square kernels only, got kernel_size={tuple(kernel_size)}')
        kernel_size = kernel_size[0]
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1:
        raise ValueError(f'ODConv2d: kernel_size must be a positive integer, got {kernel_size!r}')
    return kernel_size


def odconv_layers(model: nn.Module) -> List[ODConv2d]:
    """All ODConv2d layers inside ``model`` (unwraps nothing: DDP's ``.modules()`` sees through)."""
    return [m for m in model.modules() if isinstance(m, ODConv2d)]


def set_temperature(model: nn.Module, temperature: float) -> int:
    """Set the attention temperature of every ODConv2d in ``model``; returns how many were set."""
    temperature = _check_temperature(temperature)
    layers = odconv_layers(model)
    for layer in layers:
        layer.update_temperature(temperature)
    return len(layers)
