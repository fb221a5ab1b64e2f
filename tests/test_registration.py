"""ODConv as an mmcv conv layer: build_conv_layer / ConvModule from any registry scope."""
import pytest
import torch
from mmcv.cnn import ConvModule, build_conv_layer
from mmengine.registry import DefaultScope

import odconv_mmdet  # noqa: F401  (registers ODConv)
from odconv_mmdet.layers.odconv import ODConv2d

SCOPES = [None, 'mmdet', 'mmengine']


def in_scope(scope, fn):
    if scope is None:
        return fn()
    with DefaultScope.overwrite_default_scope(scope):
        assert DefaultScope.get_current_instance().scope_name == scope
        return fn()


@pytest.mark.parametrize('scope', SCOPES)
def test_build_conv_layer(scope):
    if scope == 'mmdet':
        import mmdet.models  # noqa: F401  (mmdet's registry must exist to switch into it)
    conv = in_scope(scope, lambda: build_conv_layer(
        dict(type='ODConv', kernel_num=4, reduction=0.25), 8, 16, 3, stride=2, padding=1))
    assert isinstance(conv, ODConv2d)
    assert conv.kernel_num == 4 and conv.attention.fc.out_channels == 16 and conv.stride == (2, 2)
    assert conv(torch.randn(2, 8, 10, 10)).shape == (2, 16, 5, 5)


@pytest.mark.parametrize('scope', SCOPES)
def test_conv_module_with_norm_and_activation(scope):
    module = in_scope(scope, lambda: ConvModule(
        8, 16, 3, padding=1, conv_cfg=dict(type='ODConv', kernel_num=2),
        norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU')))
    assert isinstance(module.conv, ODConv2d)
    assert module.conv.bias is None  # bias='auto' drops it before a norm, as for nn.Conv2d
    assert module.in_channels == 8 and module.out_channels == 16 and module.kernel_size == (3, 3)
    module.init_weights()
    # ConvModule leaves convs that have their own init_weights alone: official init holds.
    assert torch.all(module.conv.attention.kernel_fc.bias == 0)
    out = module(torch.randn(2, 8, 12, 12))
    assert out.shape == (2, 16, 12, 12) and out.min() >= 0


def test_conv_module_without_norm_keeps_bias():
    module = ConvModule(8, 16, 3, padding=1, conv_cfg=dict(type='ODConv', kernel_num=2), norm_cfg=None)
    assert module.conv.bias is not None and module.conv.bias.shape == (16,)
    module(torch.randn(1, 8, 6, 6)).sum().backward()
    assert module.conv.bias.grad is not None


def test_unknown_argument_gives_a_clear_error():
    with pytest.raises(TypeError, match='kernel_nums'):
        build_conv_layer(dict(type='ODConv', kernel_nums=4), 8, 16, 3)
