"""Register ODConv2d as the mmcv conv layer ``ODConv``, and its family as ``CondConv`` and ``DyConv``.

They go into mmengine's *root* MODELS registry, as mmcv's own ``DCN`` does, so that
``build_conv_layer(dict(type='ODConv'), ...)`` and ``ConvModule(conv_cfg=dict(type='DyConv'))``
find them from any registry scope (mmdet's, mmpretrain's, or none): child registries fall back
to the root, but never to a sibling.
"""
from mmengine.registry import MODELS

from .dynamic_convs import CondConv2d, DyConv2d
from .odconv import ODConv2d

MODELS.register_module('ODConv', module=ODConv2d, force=True)
MODELS.register_module('CondConv', module=CondConv2d, force=True)
MODELS.register_module('DyConv', module=DyConv2d, force=True)
