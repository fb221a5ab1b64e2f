"""ODConv's four attentions, computed from the globally pooled input (reference page, Attention).

    z = relu(bn(fc(avgpool(x))))
    channel = sigmoid(channel_fc(z) / T)   [B, in, 1, 1]
    filter  = sigmoid(filter_fc(z) / T)    [B, out, 1, 1]   (absent for depthwise)
    spatial = sigmoid(spatial_fc(z) / T)   [B, k, k]        (absent when k == 1)
    kernel  = softmax(kernel_fc(z) / T)    [B, K]           (absent when K == 1)
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .tracing import is_fx_proxy, traced_as_one_call

ATTENTION_NORMS = ('BN', 'GN', 'none')
Attentions = Tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor], Optional[torch.Tensor]]


def check_temperature(temperature: float) -> float:
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
    """``attention_norm`` is the norm after ``fc``, stored as ``bn`` whatever its kind so that the
    official key names stay valid: ``'BN'`` (the official one, see AttentionBatchNorm2d),
    ``'GN'`` (one group: per-sample, so train and eval agree at any batch size) or ``'none'``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, groups: int = 1,
                 reduction: float = 0.0625, kernel_num: int = 4, min_channels: int = 16,
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
        """``bn(z)``, keeping batch-1 training after a SyncBN conversion (``sync_bn='torch'`` turns
        this norm into SyncBN too): one sample in one process has no batch statistics, so it is
        normalised with the running statistics, as AttentionBatchNorm2d does."""
        bn = self.bn
        if (self.training and bn.training and z.size(0) == 1 and not isinstance(bn, AttentionBatchNorm2d)
                and isinstance(bn, nn.modules.batchnorm._BatchNorm) and _world_size() == 1):
            return F.batch_norm(z, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
        return bn(z)

    @torch.jit.unused
    def _one_traced_call(self, x: torch.Tensor) -> Attentions:
        """One call in an fx graph; like the eager forward it gives None for absent attentions."""
        out = traced_as_one_call(self, x)
        return (out[0], None if self.filter_fc is None else out[1], None if self.spatial_fc is None else out[2],
                None if self.kernel_fc is None else out[3])

    @staticmethod
    def _head(weight: torch.Tensor, bias: Optional[torch.Tensor], z: torch.Tensor) -> torch.Tensor:
        # A 1x1 conv on a [B, C, 1, 1] tensor is a linear map on [B, C], without a conv's set-up.
        return F.linear(z, weight.flatten(1), bias)

    def forward(self, x: torch.Tensor) -> Attentions:
        """(channel, filter, spatial, kernel); an attention the layer does not have is None."""
        if not torch.jit.is_scripting() and is_fx_proxy(x):
            return self._one_traced_call(x)
        # fc has no bias in the official layer; mmcv's fuse_conv_bn gives it one when it folds
        # `bn` into it, so a bias that exists is applied.
        z = self._head(self.fc.weight, self.fc.bias, x.mean(dim=(2, 3)))
        z = F.relu(self.bn(z) if torch.jit.is_scripting() else self._normalise(z))
        t = self.temperature
        channel = torch.sigmoid(self._head(self.channel_fc.weight, self.channel_fc.bias, z) / t)[:, :, None, None]
        filter_att: Optional[torch.Tensor] = None
        spatial: Optional[torch.Tensor] = None
        kernel: Optional[torch.Tensor] = None
        filter_fc, spatial_fc, kernel_fc = self.filter_fc, self.spatial_fc, self.kernel_fc
        if filter_fc is not None:
            filter_att = torch.sigmoid(self._head(filter_fc.weight, filter_fc.bias, z) / t)[:, :, None, None]
        if spatial_fc is not None:
            spatial = torch.sigmoid(self._head(spatial_fc.weight, spatial_fc.bias, z) / t).view(z.size(0), self.kernel_size, self.kernel_size)
        if kernel_fc is not None:
            kernel = torch.softmax(self._head(kernel_fc.weight, kernel_fc.bias, z) / t, dim=1)
        return channel, filter_att, spatial, kernel


def _world_size() -> int:
    import torch.distributed as dist
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
