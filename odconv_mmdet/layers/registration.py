"""Register ODConv2d as the mmcv conv layer ``ODConv``.

It goes into mmengine's *root* MODELS registry, as mmcv's own ``DCN`` does, so that
``build_conv_layer(dict(type='ODConv'), ...)`` and ``ConvModule(conv_cfg=dict(type='ODConv'))``
find it from any registry scope (mmdet's, mmpretrain's, or none): child registries fall back
to the root, but never to a sibling.
"""
from mmengine.registry import MODELS

from .odconv import ODConv2d

MODELS.register_module('ODConv', module=ODConv2d, force=True)
