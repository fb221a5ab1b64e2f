"""CondConv and DyConv: ODConv2d's kernel-stack computation with one kernel attention of their own.

Both build, per sample b, the kernel W_b = sum_i pi[b, i] * W_i from K candidate kernels, with an
attention computed from the globally pooled input (shared/docs/dynamic-convs-reference.md):

    CondConv (Yang et al., 2019): pi = sigmoid(kernel_fc(GAP(x)))                 (no temperature)
    DyConv  (Chen et al., 2020):  pi = softmax(kernel_fc(relu(fc(GAP(x)))) / T)    (fc: in -> in/4)

and have neither spatial, input-channel nor filter attentions. A bias (``bias=True``) is per
kernel, [K, out], mixed by the same pi. Everything else (the formulations, BN folding, tracing,
export, static inflation, FLOPs) is ODConv2d's. ODConvTemperatureHook anneals DyConv's T, as
DyConv's recipe does (30 -> 1 over the first 10 epochs); CondConv has no T and is left alone.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attention import Attentions
from .odconv import ODConv2d
from .tracing import is_fx_proxy, traced_as_one_call


class CondConvRouting(nn.Module):
    """CondConv's routing: one sigmoid weight per kernel from GAP + FC (``kernel_fc``, in -> K)."""

    routing = 'sigmoid'  # the weights need not sum to 1 (static_inflation.py reads this)

    def __init__(self, in_channels: int, kernel_num: int):
        super().__init__()
        self.kernel_fc = nn.Conv2d(in_channels, kernel_num, 1, bias=True)
        self.init_weights()

    def init_weights(self) -> None:
        nn.init.kaiming_normal_(self.kernel_fc.weight, mode='fan_out', nonlinearity='relu')
        nn.init.constant_(self.kernel_fc.bias, 0)

    def forward(self, x: torch.Tensor) -> Attentions:
        if not torch.jit.is_scripting() and is_fx_proxy(x):
            return None, None, None, traced_as_one_call(self, x)[3]
        none: Optional[torch.Tensor] = None
        kernel = torch.sigmoid(F.linear(x.mean(dim=(2, 3)), self.kernel_fc.weight.flatten(1), self.kernel_fc.bias))
        return none, none, none, kernel


class DyConvAttention(nn.Module):
    """DyConv's attention: softmax(kernel_fc(relu(fc(GAP(x)))) / T) over the K kernels, ``fc``
    reducing the channels by ``1 / reduction`` (4 in the paper)."""

    routing = 'softmax'

    def __init__(self, in_channels: int, kernel_num: int, reduction: float = 0.25):
        super().__init__()
        self.attention_channels = max(int(in_channels * reduction), 1)
        self.temperature = 1.0
        self.fc = nn.Conv2d(in_channels, self.attention_channels, 1, bias=True)
        self.kernel_fc = nn.Conv2d(self.attention_channels, kernel_num, 1, bias=True)
        self.init_weights()

    def init_weights(self) -> None:
        for m in (self.fc, self.kernel_fc):
            nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> Attentions:
        if not torch.jit.is_scripting() and is_fx_proxy(x):
            return None, None, None, traced_as_one_call(self, x)[3]
        none: Optional[torch.Tensor] = None
        z = F.relu(F.linear(x.mean(dim=(2, 3)), self.fc.weight.flatten(1), self.fc.bias))
        logits = F.linear(z, self.kernel_fc.weight.flatten(1), self.kernel_fc.bias)
        return none, none, none, torch.softmax(logits / self.temperature, dim=1)


def _check_kernel_num(cls_name: str, kernel_num) -> None:
    if isinstance(kernel_num, bool) or not isinstance(kernel_num, int) or kernel_num < 2:
        raise ValueError(f'{cls_name}: kernel_num must be an integer >= 2 (it mixes K candidate kernels), '
                         f'got {kernel_num!r}')


class CondConv2d(ODConv2d):
    """CondConv (Yang et al., NeurIPS 2019): ``kernel_num`` (8) kernels mixed per sample by
    sigmoid routing weights. Args as ``nn.Conv2d`` plus ``kernel_num`` and ``conv_path``
    (see ODConv2d); ``bias=True`` gives per-kernel biases [K, out]."""

    __jit_unused_properties__ = ['temperature']

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = False, kernel_num: int = 8, padding_mode: str = 'zeros',
                 conv_path: str = 'auto'):
        nn.Module.__init__(self)
        _check_kernel_num('CondConv2d', kernel_num)
        self._init_geometry(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, kernel_num,
                            padding_mode, conv_path)
        self.attentions = ('kernel',)
        self.attention = CondConvRouting(in_channels, kernel_num)
        self._init_kernels(bias, [kernel_num, out_channels])

    @property
    def temperature(self) -> float:
        raise AttributeError('CondConv2d has no attention temperature (its routing is a plain sigmoid)')

    def update_temperature(self, temperature: float) -> None:
        raise TypeError('CondConv2d has no attention temperature (its routing is a plain sigmoid)')

    def _attention_repr(self) -> str:
        return f', kernel_num={self.kernel_num}'


class DyConv2d(ODConv2d):
    """DyConv (Chen et al., CVPR 2020): ``kernel_num`` (4) kernels mixed per sample by a softmax
    attention with temperature T over an FC-ReLU-FC bottleneck (``reduction`` 1/4). Args as
    ``nn.Conv2d`` plus ``kernel_num``, ``reduction`` and ``conv_path`` (see ODConv2d);
    ``bias=True`` gives per-kernel biases [K, out], aggregated with the same weights."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = False, kernel_num: int = 4, reduction: float = 0.25,
                 padding_mode: str = 'zeros', conv_path: str = 'auto'):
        nn.Module.__init__(self)
        _check_kernel_num('DyConv2d', kernel_num)
        self._init_geometry(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, kernel_num,
                            padding_mode, conv_path)
        if isinstance(reduction, bool) or not isinstance(reduction, (int, float)) or not 0 < reduction <= 1:
            raise ValueError(f'DyConv2d: reduction must be a number in (0, 1], got {reduction!r}')
        self.reduction = reduction
        self.attentions = ('kernel',)
        self.attention = DyConvAttention(in_channels, kernel_num, reduction)
        self._init_kernels(bias, [kernel_num, out_channels])

    def _attention_repr(self) -> str:
        return f', kernel_num={self.kernel_num}, reduction={self.reduction}'
