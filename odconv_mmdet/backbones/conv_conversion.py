"""Turn a built backbone's static convs into ODConv, by the official OD topology or by name.

The official OD-ResNet / OD-MobileNetV2 put ODConv inside the residual blocks and keep the image
stem and the 1x1 projection shortcuts static. ``default_odconv_names`` applies that rule to any
mmdet backbone: a conv becomes ODConv when it lies inside a residual block (a module of one of
``BLOCK_TYPES``) and not on its shortcut (``downsample`` / ``shortcut``). Grouped and depthwise
convs inside blocks are included. Convs outside blocks (stems, HRNet's transitions and fuse
layers, CSP layers' 1x1 main / short / final convs, SPP) stay static.

A converted layer starts from the ODConv initialisation; static weights loaded later (mmengine's
``Pretrained``, ``load_from``) are inflated into it by ``ODConv2d`` itself
(``layers/static_inflation.py``).
"""
from fnmatch import fnmatchcase

import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm
from mmcv.cnn.bricks.wrappers import Conv2d as MMCVConv2d
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck
from mmdet.models.layers import InvertedResidual
from mmdet.models.layers.csp_layer import CSPNeXtBlock, DarknetBottleneck

from ..layers.odconv import ODConv2d

BLOCK_TYPES = (BasicBlock, Bottleneck, InvertedResidual, CSPNeXtBlock, DarknetBottleneck)
SHORTCUT_NAMES = ('downsample', 'shortcut')
PLAIN_CONV_TYPES = (nn.Conv2d, MMCVConv2d)  # subclasses (DCN, adaptive padding) compute otherwise


def static_convs(module):
    """{name: conv} of the plain 2-D convs in ``module``, outside ODConv layers (whose attention
    heads are 1x1 convs)."""
    odconvs = [name + '.' for name, m in module.named_modules() if isinstance(m, ODConv2d)]
    return {name: m for name, m in module.named_modules()
            if type(m) in PLAIN_CONV_TYPES and not name.startswith(tuple(odconvs))}


def attention_norm_following(norm_types):
    """The ODConv attention norm that matches a backbone whose norm layers are of
    ``norm_types``: 'GN' (per sample) where they all normalise per sample (GroupNorm,
    LayerNorm, InstanceNorm), else 'BN', the official choice (BatchNorm, SyncBN, or no norm):
    a model chosen to be independent of the batch stays so."""
    per_sample = (nn.GroupNorm, nn.LayerNorm, _InstanceNorm)
    kinds = {'BN' if issubclass(t, _BatchNorm) else 'GN' for t in norm_types
             if issubclass(t, _BatchNorm) or issubclass(t, per_sample)}
    return 'GN' if kinds == {'GN'} else 'BN'


def why_not_convertible(conv):
    """None if ``conv`` can become an ODConv2d, else the reason it cannot."""
    if conv.kernel_size[0] != conv.kernel_size[1]:
        return f'non-square kernel {tuple(conv.kernel_size)}'
    if isinstance(conv.padding, str):
        return f"padding={conv.padding!r}"
    if conv.padding_mode != 'zeros':
        return f'padding_mode={conv.padding_mode!r}'
    return None


def default_odconv_names(module):
    """Names of the convs that the official topology makes ODConv (see the module docstring)."""
    blocks = [name for name, m in module.named_modules() if isinstance(m, BLOCK_TYPES)]
    chosen = []
    for name in static_convs(module):
        inside = [b for b in blocks if name.startswith(b + '.')]
        if inside and not any(part in SHORTCUT_NAMES for part in name[len(inside[0]) + 1:].split('.')):
            chosen.append(name)
    return chosen


def select_odconv_names(module, include=None, exclude=None):
    """The default rule, or the convs matching ``include`` (fnmatch patterns on module names)
    when given; minus those matching ``exclude``. A pattern that matches no conv is an error."""
    names = list(static_convs(module))
    for key, patterns in (('include', include), ('exclude', exclude)):
        if patterns is None:
            continue
        if isinstance(patterns, str) or not all(isinstance(p, str) for p in patterns):
            raise TypeError(f'{key} must be a list of module-name patterns, got {patterns!r}')
        unmatched = [p for p in patterns if not any(fnmatchcase(n, p) for n in names)]
        if unmatched:
            raise ValueError(f'{key} patterns {unmatched} match no conv of this backbone; its convs are '
                             f'named like {names[:4]}')
    chosen = default_odconv_names(module) if include is None else [
        n for n in names if any(fnmatchcase(n, p) for p in include)]
    return [n for n in chosen if not any(fnmatchcase(n, p) for p in exclude or ())]


def to_odconv(conv, layer_class=ODConv2d, **odconv_kwargs):
    """An ODConv2d (or ``layer_class``: CondConv2d, DyConv2d) with ``conv``'s geometry, in
    ``conv``'s training mode, device and dtype; trainable only if ``conv`` was (a frozen stage
    stays frozen, attention included)."""
    od = layer_class(conv.in_channels, conv.out_channels, conv.kernel_size[0], stride=conv.stride,
                     padding=conv.padding, dilation=conv.dilation, groups=conv.groups,
                     bias=conv.bias is not None, **odconv_kwargs)
    od.to(device=conv.weight.device, dtype=conv.weight.dtype)
    od.train(conv.training)
    od.requires_grad_(conv.weight.requires_grad)
    return od


def convert_convs(module, names, **odconv_kwargs):
    """Replace the named convs of ``module`` by ODConv2d, in place.

    Returns (converted names, {name: reason} of those left static because ODConv2d cannot
    express them)."""
    convs = static_convs(module)
    converted, refused = [], {}
    for name in names:
        reason = why_not_convertible(convs[name])
        if reason:
            refused[name] = reason
            continue
        parent_name, _, attr = name.rpartition('.')
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, attr, to_odconv(convs[name], **odconv_kwargs))
        converted.append(name)
    return converted, refused
