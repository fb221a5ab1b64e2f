"""ODConv's four attentions, computed from the globally pooled input (reference page, Attention).

    z = relu(bn(fc(avgpool(x))))
    channel = sigmoid(channel_fc(z) / T)   [B, in, 1, 1]
    filter  = sigmoid(filter_fc(z) / T)    [B, out, 1, 1]   (absent for depthwise)
    spatial = sigmoid(spatial_fc(z) / T)   [B, k, k]        (absent when k == 1)
    kernel  = softmax(kernel_fc(z) / T)    [B, K]           (absent when K == 1)

``attentions`` keeps a subset of them (the paper's ablations): an absent attention is 1 and its
head is not built; a layer left with no head has no ``fc`` / ``bn`` either (a static conv).
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .tracing import is_fx_proxy, traced_as_one_call

ATTENTION_NORMS = ('BN', 'GN', 'none')
ATTENTION_NAMES = ('spatial', 'channel', 'filter', 'kernel')
# (channel, filter, spatial, kernel), None where the layer has no such attention
Attentions = Tuple[Optional[torch.Tensor], Optional[torch.Tensor], Optional[torch.Tensor], Optional[torch.Tensor]]


def check_attentions(attentions, kernel_num: int) -> Tuple[str, ...]:
    """The attention names a layer computes, in ATTENTION_NAMES order: all four by default
    (``None``; 'kernel' only when K > 1), else the given non-empty subset. K candidate kernels
    need the kernel attention that mixes them, and one kernel has nothing to mix."""
    if attentions is None:
        return ATTENTION_NAMES if kernel_num > 1 else ATTENTION_NAMES[:3]
    if isinstance(attentions, str) or not isinstance(attentions, (list, tuple, set, frozenset)) \
            or not all(isinstance(a, str) for a in attentions):
        raise TypeError(f'attentions must be a list or tuple of attention names out of {ATTENTION_NAMES}, '
                        f'got {attentions!r}')
    unknown = [a for a in attentions if a not in ATTENTION_NAMES]
    if unknown:
        raise ValueError(f'attentions: unknown names {unknown}; the attentions are {ATTENTION_NAMES}')
    if len(set(attentions)) != len(attentions):
        raise ValueError(f'attentions: {list(attentions)} names an attention twice')
    if not attentions:
        raise ValueError(f'attentions must name at least one of {ATTENTION_NAMES}, got an empty set')
    if 'kernel' in attentions and kernel_num == 1:
        raise ValueError(f"attentions: 'kernel' needs kernel_num > 1 (one kernel has nothing to mix), "
                         f'got attentions={list(attentions)} with kernel_num=1')
    if 'kernel' not in attentions and kernel_num > 1:
        raise ValueError(f"attentions without 'kernel' need kernel_num=1: K={kernel_num} kernels with no kernel "
                         f'attention would only sum to one static kernel (got attentions={list(attentions)})')
    return tuple(a for a in ATTENTION_NAMES if a in attentions)


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
    ``'GN'`` (one group: per-sample, so train and eval agree at any batch size) or ``'none'``.
    ``attentions``: see check_attentions; an attention the layer's shape excludes (filter for a
    depthwise conv, spatial for a 1x1 one) is absent whether named or not, as in the official
    layer."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, groups: int = 1,
                 reduction: float = 0.0625, kernel_num: int = 4, min_channels: int = 16,
                 attention_norm: str = 'BN', attentions=None):
        super().__init__()
        if attention_norm not in ATTENTION_NORMS:
            raise ValueError(f'attention_norm must be one of {ATTENTION_NORMS}, got {attention_norm!r}')
        names = check_attentions(attentions, kernel_num)
        is_depthwise = in_channels == groups and in_channels == out_channels
        head_sizes = dict(channel=in_channels, filter=0 if is_depthwise else out_channels,
                          spatial=0 if kernel_size == 1 else kernel_size * kernel_size, kernel=kernel_num)
        attention_channels = max(int(in_channels * reduction), min_channels)
        self.attention_channels = attention_channels
        self.kernel_size = kernel_size
        self.kernel_num = kernel_num
        self.temperature = 1.0

        sizes = {name: head_sizes[name] for name in names if head_sizes[name]}

        # (built in the official order, so that a seed gives the official initialisation)
        self.fc = nn.Conv2d(in_channels, attention_channels, 1, bias=False) if sizes else None
        if not sizes or attention_norm == 'none':
            self.bn = nn.Identity()
        elif attention_norm == 'BN':
            self.bn = AttentionBatchNorm2d(attention_channels)
        else:
            self.bn = nn.GroupNorm(1, attention_channels)
        self.channel_fc, self.filter_fc, self.spatial_fc, self.kernel_fc = (
            nn.Conv2d(attention_channels, sizes[name], 1, bias=True) if name in sizes else None
            for name in ('channel', 'filter', 'spatial', 'kernel'))
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
        return (None if self.channel_fc is None else out[0], None if self.filter_fc is None else out[1],
                None if self.spatial_fc is None else out[2], None if self.kernel_fc is None else out[3])

    @staticmethod
    def _head(weight: torch.Tensor, bias: Optional[torch.Tensor], z: torch.Tensor) -> torch.Tensor:
        # A 1x1 conv on a [B, C, 1, 1] tensor is a linear map on [B, C], without a conv's set-up.
        return F.linear(z, weight.flatten(1), bias)

    def forward(self, x: torch.Tensor) -> Attentions:
        """(channel, filter, spatial, kernel); an attention the layer does not have is None."""
        if not torch.jit.is_scripting() and is_fx_proxy(x):
            return self._one_traced_call(x)
        channel: Optional[torch.Tensor] = None
        filter_att: Optional[torch.Tensor] = None
        spatial: Optional[torch.Tensor] = None
        kernel: Optional[torch.Tensor] = None
        fc = self.fc
        if fc is None:  # no attention at all
            return channel, filter_att, spatial, kernel
        # fc has no bias in the official layer; mmcv's fuse_conv_bn gives it one when it folds
        # `bn` into it, so a bias that exists is applied.
        z = self._head(fc.weight, fc.bias, x.mean(dim=(2, 3)))
        z = F.relu(self.bn(z) if torch.jit.is_scripting() else self._normalise(z))
        t = self.temperature
        channel_fc, filter_fc, spatial_fc, kernel_fc = self.channel_fc, self.filter_fc, self.spatial_fc, self.kernel_fc
        if channel_fc is not None:
            channel = torch.sigmoid(self._head(channel_fc.weight, channel_fc.bias, z) / t)[:, :, None, None]
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
