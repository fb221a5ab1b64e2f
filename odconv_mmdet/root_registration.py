"""The plugin's backbones and hook by their plain names in mmengine's root registries, beside mmdet's.

mmdet's, mmpretrain's and mmengine's registries each fall back to the root, never to a sibling: a
config in any of their scopes (``default_scope='mmpretrain'``, say) then finds ``ODResNet``,
``ODMobileNetV2``, ``ODConvBackbone`` and ``ODConvTemperatureHook``, as it finds the conv layer
``ODConv`` (layers/registration.py). No other toolbox's name is taken, and nothing here needs
mmpretrain.
"""
from mmengine.registry import HOOKS, MODELS

from .backbones import ODConvBackbone, ODMobileNetV2, ODResNet
from .hooks import ODConvTemperatureHook

for backbone in (ODResNet, ODMobileNetV2, ODConvBackbone):
    MODELS.register_module(module=backbone, force=True)
HOOKS.register_module(module=ODConvTemperatureHook, force=True)
