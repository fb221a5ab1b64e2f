"""ODConv: Omni-Dimensional Dynamic Convolution (Li, Zhou & Yao, ICLR 2022).

Plain PyTorch, importable without mmcv/mmdet. Parameter names and shapes follow the official
release (shared/docs/odconv-reference.md) so its checkpoints load strictly:

    weight                [K, out, in/groups, k, k]
    attention.fc          1x1 conv in -> A (no bias), A = max(int(in * reduction), 16)
    attention.bn          norm over A (BatchNorm2d by default)
    attention.channel_fc  A -> in
    attention.filter_fc   A -> out           (absent for depthwise: in == groups == out)
    attention.spatial_fc  A -> k*k           (absent when k == 1)
    attention.kernel_fc   A -> K             (absent when K == 1)

Per sample b, with temperature T (attention.py):
    W_b = sum_i alpha_w[b, i] * alpha_s[b] * weight[i]
    y_b = alpha_f[b] * conv2d(alpha_c[b] * x_b, W_b) (+ bias)

``attentions`` keeps a subset of the four (an absent one is 1 and has no head). CondConv and
DyConv (dynamic_convs.py) are this layer with only a kernel attention of their own.
"""
import functools
import math
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.utils import _pair

from .attention import AttentionBatchNorm2d, ODConvAttention, check_attentions, check_temperature  # noqa: F401
from .conv_bn import fold_batch_norm
from . import conv_path_policy
from .matmul_formulations import batched_matmul_conv
from .shared_matmul import shared_matmul_conv
from .static_inflation import inflated_state, is_static_weight
from .tracing import is_fx_proxy, traced_as_one_call

CONV_PATHS = ('auto', 'per_sample', 'batched_matmul', 'shared_matmul')


class ODConv2d(nn.Module):
    """Omni-dimensional dynamic 2-D convolution, state-dict compatible with the official layer.

    Args mirror ``nn.Conv2d`` plus ``reduction`` (attention width ratio, A >= 16),
    ``kernel_num`` (K candidate kernels), ``attention_norm`` (see ODConvAttention) and
    ``conv_path``: 'auto' lets conv_path_policy.py pick the formulation per device and input
    shape; 'per_sample' (the official one), 'batched_matmul' or 'shared_matmul' (groups=1
    only) force one. All give the same numbers. ``bias=True`` adds a per-output bias after the
    filter attention (the official layer has none, so its checkpoints load only with
    ``bias=False``). ``attentions``: the attentions computed, a subset of ('spatial',
    'channel', 'filter', 'kernel'); default all (see attention.check_attentions).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = False, reduction: float = 0.0625, kernel_num: int = 4,
                 attention_norm: str = 'BN', padding_mode: str = 'zeros', conv_path: str = 'auto',
                 attentions=None):
        super().__init__()
        kernel_size = self._init_geometry(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                                          kernel_num, padding_mode, conv_path)
        if not isinstance(reduction, (int, float)) or not reduction > 0 or not math.isfinite(reduction):
            raise ValueError(f'{type(self).__name__}: reduction must be a finite number > 0, got {reduction!r}')
        self.reduction = reduction
        self.attentions = check_attentions(attentions, kernel_num)
        self.attention = ODConvAttention(in_channels, out_channels, kernel_size, groups=groups, reduction=reduction,
                                         kernel_num=kernel_num, attention_norm=attention_norm,
                                         attentions=self.attentions)
        self._init_kernels(bias)

    def _init_geometry(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                       kernel_num, padding_mode, conv_path) -> int:
        """Checks and sets what every dynamic conv of this family has; returns the kernel size."""
        kernel_size = _square_kernel(kernel_size)
        if padding_mode != 'zeros':
            raise ValueError(f"{type(self).__name__} supports padding_mode='zeros' only, got {padding_mode!r} "
                             "(mmcv's ConvModule pads for other modes itself: pass padding_mode to it)")
        for name, value in (('in_channels', in_channels), ('out_channels', out_channels), ('groups', groups),
                            ('kernel_num', kernel_num)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'{type(self).__name__}: {name} must be a positive integer, got {value!r}')
        if in_channels % groups or out_channels % groups:
            raise ValueError(f'{type(self).__name__}: in_channels ({in_channels}) and out_channels ({out_channels}) '
                             f'must both be divisible by groups ({groups})')

        # The attributes nn.Conv2d has, so ConvModule and other code that inspects convs work.
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = (kernel_size, kernel_size)
        self.stride, self.dilation = _pair(stride), _pair(dilation)
        self.padding = _pair(_explicit_padding(padding, kernel_size, self.stride, self.dilation))
        self.transposed, self.output_padding, self.padding_mode = False, (0, 0), 'zeros'
        self.kernel_num = kernel_num
        self.conv_path = conv_path
        self._checked_conv_path()
        self.inflated_on_load = False  # set by each load: was a static conv weight inflated?
        return kernel_size

    def _init_kernels(self, bias: bool, bias_shape: Optional[List[int]] = None) -> None:
        """The kernel stack [K, out, in/g, k, k] and the bias (``bias_shape``, default [out]),
        initialised (after ``self.attention`` is built)."""
        k = self.kernel_size[0]
        self.weight = nn.Parameter(torch.empty(self.kernel_num, self.out_channels, self.in_channels // self.groups,
                                               k, k))
        self._channel_attention = self.attention_has('channel_fc')
        self._per_kernel_bias = bias and bias_shape is not None
        shape = [self.out_channels] if bias_shape is None else bias_shape
        self.register_parameter('bias', nn.Parameter(torch.empty(shape)) if bias else None)
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
        self.attention.temperature = check_temperature(temperature)

    # ---- the computation -------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and is_fx_proxy(x):
            return self._traced_forward(x)
        out = self._dynamic_conv(x, self.weight, self.bias)
        if not torch.jit.is_scripting():
            _count_for_mmcv_flops_counter(self, x, out)
        return out

    def official_conv(self, x: torch.Tensor, kernels: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
        """The official computation, with the kernel stack ``kernels`` [K, out, in/g, k, k]: per
        sample b, y_b = alpha_f[b] * conv(alpha_c[b] * x_b, W_b), all samples as one conv with the
        batch folded into its groups. With K == 1 and k == 1, W_b is the static kernel."""
        channel, filter_att, spatial, kernel = self.attention(x)
        if channel is not None:
            x = x * channel
        if kernel is None and spatial is None:
            out = F.conv2d(x, kernels[0], None, self.stride, self.padding, self.dilation, self.groups)
        else:
            weight = self._mixed_kernels(kernels, x.size(0), spatial, kernel)
            out = conv_per_sample(x, weight, self.stride, self.padding, self.dilation, self.groups)
        return _filter_and_bias(out, filter_att, bias, kernel, self._per_kernel_bias)

    def _mixed_kernels(self, kernels: torch.Tensor, batch: int, spatial: Optional[torch.Tensor],
                       kernel: Optional[torch.Tensor]) -> torch.Tensor:
        """W_b = sum_i alpha_w[b, i] * alpha_s[b] * W_i as [B, out, in/g, k, k] ([1, ...] when the
        layer has neither attention: one kernel shared by the batch)."""
        weight = kernels
        if kernel is not None:
            weight = torch.mm(kernel, kernels.flatten(1)).view(batch, kernels.size(1), kernels.size(2),
                                                                kernels.size(3), kernels.size(4))
        if spatial is not None:
            weight = weight * spatial.view(batch, 1, 1, self.kernel_size[0], self.kernel_size[1])
        return weight

    def _dynamic_conv(self, x: torch.Tensor, kernels: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
        """The layer with the kernel stack ``kernels`` and ``bias``: its own parameters in
        ``forward``, a following BatchNorm folded into them in ``conv_bn_eval_forward``."""
        self._check_input(x)
        path = self._choose_path(x)
        shape = self._output_shape(x)
        folds = conv_path_policy.folded_attentions(
            x.device.type, torch.jit.is_tracing(), x.size(0), kernels[0].numel(), x.size(1) * x.size(2) * x.size(3),
            shape[1] * shape[2] * shape[3], self.kernel_num == 1 and self.kernel_size[0] == 1,
            self._channel_attention)
        if x.size(0) == 0 and not torch.jit.is_tracing():
            out = self._empty_output(x, kernels, bias, shape)
        elif path == 'shared_matmul':
            channel, filter_att, spatial, kernel = self.attention(x)
            out = shared_matmul_conv(x, kernels, channel, filter_att, spatial, kernel, self.stride, self.padding,
                                     self.dilation)
            out = _filter_and_bias(out, None, bias, kernel, self._per_kernel_bias)
        elif path == 'per_sample' and not (folds[0] or folds[1]):
            out = self.official_conv(x, kernels, bias)
        else:
            out = self._reformulated_conv(x, kernels, bias, shape, path, folds[0], folds[1])
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            # channels_last in, channels_last out, as from nn.Conv2d (the convs above reshape the
            # batch; shared_matmul computes channels-last whatever comes in)
            return out.contiguous(memory_format=torch.channels_last)
        return out.contiguous()

    def _reformulated_conv(self, x: torch.Tensor, kernels: torch.Tensor, bias: Optional[torch.Tensor],
                           out_shape: List[int], path: str, fold_channel: bool, fold_filter: bool) -> torch.Tensor:
        """official_conv computed as conv_path_policy.py says: the channel (filter) attention
        scaling the per-sample kernels instead of the input (output), and/or the convs as one
        batched matmul (matmul_formulations.py)."""
        channel, filter_att, spatial, kernel = self.attention(x)
        weight = self._mixed_kernels(kernels, x.size(0), spatial, kernel)
        g, k = self.groups, self.kernel_size[0]
        cin_g, cout_g = self.in_channels // g, self.out_channels // g
        weight = weight.view(weight.size(0), g, cout_g, cin_g, k, k)
        if channel is not None:
            if fold_channel:
                weight = weight * channel.view(x.size(0), g, 1, cin_g, 1, 1)
            else:
                x = x * channel
        if fold_filter and filter_att is not None:
            weight = weight * filter_att.view(x.size(0), g, cout_g, 1, 1, 1)
            filter_att = None
        weight = weight.view(weight.size(0), self.out_channels, cin_g, k, k)
        if path == 'batched_matmul':
            out = batched_matmul_conv(x, weight, out_shape, self.stride, self.padding, self.dilation, g)
        elif weight.size(0) == 1:  # a kernel shared by the batch, or batch 1
            out = F.conv2d(x, weight[0], None, self.stride, self.padding, self.dilation, g)
        else:
            out = conv_per_sample(x, weight, self.stride, self.padding, self.dilation, g)
        return _filter_and_bias(out, filter_att, bias, kernel, self._per_kernel_bias)

    def _empty_output(self, x: torch.Tensor, kernels: torch.Tensor, bias: Optional[torch.Tensor],
                      out_shape: List[int]) -> torch.Tensor:
        """An empty batch (e.g. a mask head without positive RoIs): the empty output, tied to the
        kernels and every attention so that autograd and DDP see them all used."""
        channel, filter_att, spatial, kernel = self.attention(x)
        out = x.new_zeros(out_shape) + kernels.sum() * 0
        for att in [channel, spatial, kernel]:
            if att is not None:
                out = out + att.sum()
        return _filter_and_bias(out, filter_att, bias, kernel, self._per_kernel_bias)

    @torch.jit.unused
    def attention_has(self, head: str) -> bool:
        """Whether the attention has the head ``head`` (e.g. 'channel_fc')."""
        return getattr(self.attention, head, None) is not None

    def _output_shape(self, x: torch.Tensor) -> List[int]:
        return [x.size(0), self.out_channels,
                conv_output_size(x.size(2), self.kernel_size[0], self.padding[0], self.stride[0], self.dilation[0]),
                conv_output_size(x.size(3), self.kernel_size[1], self.padding[1], self.stride[1], self.dilation[1])]

    def _checked_conv_path(self) -> str:
        # (a literal list: TorchScript cannot read a module-level tuple)
        if self.conv_path not in ['auto', 'per_sample', 'batched_matmul', 'shared_matmul']:
            raise ValueError("ODConv2d: conv_path must be one of 'auto', 'per_sample', 'batched_matmul', "
                             "'shared_matmul', got '{}'".format(self.conv_path))
        if self.conv_path == 'shared_matmul' and self.groups != 1:
            raise ValueError("ODConv2d: conv_path='shared_matmul' needs groups=1, got groups={}"
                             .format(self.groups))
        return self.conv_path

    def _choose_path(self, x: torch.Tensor) -> str:
        """The forced ``conv_path``, or under 'auto' the policy's pick for this input."""
        path = self._checked_conv_path()
        if path == 'auto':
            shape = self._output_shape(x)
            path = conv_path_policy.choose_conv_path(x.device.type, torch.jit.is_tracing(), x.size(0),
                                                     self.in_channels, self.out_channels, self.kernel_size[0],
                                                     self.kernel_num, self.groups, shape[2] * shape[3])
        return path

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise ValueError('ODConv2d expects a 4-D input [N, C, H, W], got a {}-D tensor of shape {}'
                             .format(x.dim(), list(x.shape)))
        if x.size(1) != self.in_channels:
            raise ValueError('ODConv2d expects {} input channels, got {} (input shape {})'
                             .format(self.in_channels, x.size(1), list(x.shape)))

    @torch.jit.unused
    def _traced_forward(self, x: torch.Tensor) -> torch.Tensor:
        """torch.fx: one call inside a traced model (tracing.py); traced alone, official_conv."""
        if x.tracer.root is not self:
            return traced_as_one_call(self, x)
        return self.official_conv(x, self.weight, self.bias)

    # ---- OpenMMLab's and torch's conv tools --------------------------------------------------

    def conv_bn_eval_forward(self, bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
        """``bn(self(x))`` for a ``bn`` in eval mode, with ``bn`` folded into every one of the K
        kernels and the bias (the filter attention and the conv commute with a per-channel scale):
        what mmcv's ``ConvModule(..., efficient_conv_bn_eval=True)`` runs for ODConv. Per-kernel
        biases [K, out] (CondConv, DyConv) are scaled per kernel and the norm's shift added after
        the mix, exact whether or not the kernel attention sums to 1."""
        bias = self.bias
        if bias is None or not self._per_kernel_bias:
            kernels, folded_bias = fold_batch_norm(self.weight, bias, bn, out_dim=1)
            return self._dynamic_conv(x, kernels, folded_bias)
        kernels, shift = fold_batch_norm(self.weight, None, bn, out_dim=1)
        scaled_bias, _ = fold_batch_norm(bias, None, bn, out_dim=1)
        return self._dynamic_conv(x, kernels, scaled_bias) + shift.view(1, -1, 1, 1)

    def __setattr__(self, name, value):
        """mmcv's ConvModule with ``efficient_conv_bn_eval=True`` sets, for one eval-mode call,
        ``conv.forward = partial(efficient_conv_bn_eval_forward, norm, conv)``, whose weight
        arithmetic assumes a 4-D nn.Conv2d kernel: for ODConv that call is taken by
        ``conv_bn_eval_forward``, which folds the norm into the 5-D kernel stack."""
        if (name == 'forward' and isinstance(value, functools.partial)
                and getattr(value.func, '__name__', '') == 'efficient_conv_bn_eval_forward'
                and len(value.args) == 2 and value.args[1] is self):
            value = functools.partial(_conv_bn_eval_call, self, value.args[0])
        super().__setattr__(name, value)

    def __delattr__(self, name):
        """Refuse what would remove the kernel stack: ``torch.nn.utils.spectral_norm`` (also via
        ``ConvModule(with_spectral_norm=True)``) and ``torch.nn.utils.parametrize`` delete
        ``weight`` before they change anything else, so the layer is left as it was."""
        if name == 'weight':
            raise TypeError('ODConv2d: its kernel stack `weight` [K, out, in/g, k, k] cannot be removed or '
                            're-parametrised (torch.nn.utils.spectral_norm, ConvModule(with_spectral_norm=True), '
                            'torch.nn.utils.parametrize and the parametrizations built on it): spectral '
                            'norm would treat dim 0, the K candidate kernels, as the output channels')
        super().__delattr__(name)

    def _apply(self, fn, *args, **kwargs):  # (torch < 2.1 has no `recurse` argument)
        """Converts the 5-D kernel stack as K*out 4-D kernels, so that
        ``model.to(memory_format=torch.channels_last)`` (which refuses 5-D tensors) works; the
        stack keeps its official shape and stays contiguous (the kernels are built from it)."""
        def fn_on_kernel_stack(t):
            return fn(t) if t.dim() != 5 else fn(t.flatten(0, 1)).contiguous().view(t.shape)
        return super()._apply(fn_on_kernel_stack, *args, **kwargs)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        """A static conv's ``weight`` [out, in/g, k, k] (with no attention keys beside it) is
        inflated into this layer's K kernels, with the attention that makes the layer compute
        exactly that static conv (static_inflation.py); ``inflated_on_load`` records it."""
        weight = state_dict.get(prefix + 'weight')
        attention_prefix = prefix + 'attention.'
        self.inflated_on_load = is_static_weight(weight, self) and not any(
            key.startswith(attention_prefix) for key in state_dict)
        if self.inflated_on_load:
            # (the state dict handed to a module is the loader's own copy, torch's and mmengine's)
            state_dict.update(inflated_state(self, weight, state_dict.get(prefix + 'bias'), prefix))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def extra_repr(self) -> str:
        s = (f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, '
             f'stride={self.stride}, padding={self.padding}')
        if self.dilation != (1, 1):
            s += f', dilation={self.dilation}'
        if self.groups != 1:
            s += f', groups={self.groups}'
        if self.bias is None:
            s += ', bias=False'
        return s + self._attention_repr()

    def _attention_repr(self) -> str:
        s = f', kernel_num={self.kernel_num}, reduction={self.reduction}'
        if self.attentions != check_attentions(None, self.kernel_num):
            s += f', attentions={self.attentions}'
        return s


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


def conv_output_size(size: int, kernel_size: int, padding: int, stride: int, dilation: int) -> int:
    """Output length of a conv along one dimension (as nn.Conv2d)."""
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def _filter_and_bias(out: torch.Tensor, filter_att: Optional[torch.Tensor], bias: Optional[torch.Tensor],
                     kernel: Optional[torch.Tensor], per_kernel_bias: bool):
    """The filter attention, then the bias: [out], or per kernel [K, out] mixed by the kernel
    attention [B, K] (CondConv's and DyConv's biases)."""
    if filter_att is not None:
        out = out * filter_att
    if bias is not None:
        if per_kernel_bias and kernel is not None:
            bias = torch.mm(kernel, bias)
        out = out + bias.view(-1, out.size(1), 1, 1)
    return out


@torch.jit.unused
def _count_for_mmcv_flops_counter(layer: 'ODConv2d', x: torch.Tensor, out: torch.Tensor) -> None:
    """mmcv's ``get_model_complexity_info`` counts modules of the types it knows with forward
    hooks: it knows no ODConv2d, and the attention convs it hooks are applied as linear maps,
    so it would count 0 for every ODConv layer. While it counts (its ``__flops__`` counters sit
    on the attention's 1x1 convs), this layer's MAdds (``utils/madds.py``) are added to the first
    one's. (A layer whose ``attentions`` leave it no head, e.g. only 'spatial' on a 1x1 conv, has
    no conv for mmcv to count on: ``utils/madds.count_madds`` counts it.)"""
    counters = [m for m in layer.attention.modules() if hasattr(m, '__flops__')]
    if counters:
        from ..utils.madds import odconv_madds
        counters[0].__flops__ += int(sum(odconv_madds(layer, x, out).values()))


@torch.jit.unused
def _conv_bn_eval_call(conv: 'ODConv2d', bn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """One efficient conv + BN call set by mmcv's ConvModule. ConvModule deletes this override
    after the call; if the call raises, it is deleted here, so the layer never stays patched."""
    try:
        return conv.conv_bn_eval_forward(bn, x)
    except Exception:
        conv.__dict__.pop('forward', None)
        raise


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


# ODConv2d and its subclasses (dynamic_convs.py): a torch.jit.script-ed one is a
# RecursiveScriptModule that remembers its class name.
FAMILY_CLASS_NAMES = ('ODConv2d', 'CondConv2d', 'DyConv2d')


def _is_odconv(module: nn.Module) -> bool:
    return isinstance(module, ODConv2d) or getattr(module, 'original_name', None) in FAMILY_CLASS_NAMES


def odconv_layers(model: nn.Module) -> List[nn.Module]:
    """All ODConv2d layers inside ``model`` (CondConv2d and DyConv2d included), scripted ones
    too (unwraps nothing: DDP's ``.modules()`` sees through)."""
    return [m for m in model.modules() if _is_odconv(m)]


def temperature_layers(model: nn.Module) -> List[nn.Module]:
    """The layers of ``odconv_layers`` whose attention has a temperature (all but CondConv)."""
    return [m for m in odconv_layers(model) if hasattr(m.attention, 'temperature')]


def set_temperature(model: nn.Module, temperature: float) -> int:
    """Set the attention temperature of every ODConv2d and DyConv2d in ``model`` (also in a
    scripted model, which holds its own copy of the temperature); returns how many were set."""
    temperature = check_temperature(temperature)
    layers = temperature_layers(model)
    for layer in layers:
        layer.attention.temperature = temperature
    return len(layers)
