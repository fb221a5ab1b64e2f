"""``fuse_conv_bn`` for models with ODConv: mmcv's rule, with ODConv2d counted as a conv.

mmcv's ``fuse_conv_bn`` folds every BatchNorm into the ``nn.Conv2d`` registered just before it in
the same parent. It does not know ODConv2d, so an ODConv2d -> BN pair stays unfused; inside an
ODConv2d it fuses the attention's ``fc`` with ``bn``, which the layer honours (it applies
``fc.bias``). This function does the same walk and also folds a BN that follows an ODConv2d
into the layer's kernel stack and bias (``layers/conv_bn.py``), CondConv2d and DyConv2d
included (per-kernel biases fold per kernel, exact where the kernel weights sum to 1: DyConv's;
CondConv with per-kernel biases is refused). Eval mode only, as mmcv's.
"""
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..layers.conv_bn import fold_batch_norm
from ..layers.odconv import ODConv2d


def _fuse(conv: nn.Module, bn: _BatchNorm) -> nn.Module:
    out_dim = 1 if isinstance(conv, ODConv2d) else 0
    if out_dim and conv.bias is not None and conv.bias.dim() == 2 and getattr(conv.attention, 'routing', '') == 'sigmoid':
        # per-kernel biases mixed by weights that need not sum to 1: the norm's shift cannot go
        # into them (ConvModule's conv_bn_eval_forward handles this case; a fused layer cannot)
        raise ValueError(f'fuse_conv_bn: cannot fold a BatchNorm into {type(conv).__name__} with per-kernel biases '
                         '(its sigmoid routing weights do not sum to 1); build it with bias=False')
    weight, bias = fold_batch_norm(conv.weight.detach(), None if conv.bias is None else conv.bias.detach(),
                                   bn, out_dim)
    conv.weight = nn.Parameter(weight.detach(), requires_grad=conv.weight.requires_grad)
    conv.bias = nn.Parameter(bias.detach(), requires_grad=conv.weight.requires_grad)
    return conv


def fuse_conv_bn(module: nn.Module) -> nn.Module:
    """Fold each BatchNorm into the conv (nn.Conv2d or ODConv2d) registered just before it in
    the same parent, recursively, and put an ``nn.Identity`` in its place; returns ``module``.
    Same outputs in eval mode, to float rounding."""
    last_conv, last_name = None, None
    for name, child in module.named_children():
        if isinstance(child, _BatchNorm):
            if last_conv is None:  # only a BN right after a conv
                continue
            module._modules[last_name] = _fuse(last_conv, child)
            module._modules[name] = nn.Identity()
            last_conv = None
        elif isinstance(child, (nn.Conv2d, ODConv2d)):
            if isinstance(child, ODConv2d):
                fuse_conv_bn(child)  # its attention's fc + bn
            last_conv, last_name = child, name
        else:
            fuse_conv_bn(child)
    return module
