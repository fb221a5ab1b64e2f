"""ODConv as an mmcv conv layer: build_conv_layer / ConvModule from any registry scope; the backbones
and the hook by their plain names from mmdet's, mmpretrain's and mmengine's scopes."""
import pytest
import torch
from mmcv.cnn import ConvModule, build_conv_layer
from mmengine.registry import DefaultScope

import odconv_mmdet  # noqa: F401  (registers ODConv)
from odconv_mmdet.layers.odconv import ODConv2d

from .mmpretrain_stack import require_mmpretrain

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


# ---- the backbones and the hook from every toolbox's scope (issue 30) -------------------------

BACKBONES = {
    'ODResNet': dict(type='ODResNet', depth=18, kernel_num=2, base_channels=8, out_indices=(3,)),
    'ODMobileNetV2': dict(type='ODMobileNetV2', kernel_num=2, widen_factor=0.25, out_indices=(7,)),
    'ODConvBackbone': dict(type='ODConvBackbone', kernel_num=2,
                           backbone=dict(type='ResNet', depth=18, base_channels=8, out_indices=(3,))),
}


def scope_registries(scope):
    """(MODELS, HOOKS) of a toolbox: mmdet's, mmpretrain's (skipped where it is not installed: the
    users' stack has it) or mmengine's root."""
    if scope == 'mmpretrain':
        require_mmpretrain()
        import mmpretrain.registry as registry
        import mmpretrain.models  # noqa: F401  (its own modules, so a name clash would show)
    elif scope == 'mmdet':
        import mmdet.models  # noqa: F401
        import mmdet.registry as registry
    else:
        import mmengine.registry as registry
    return registry.MODELS, registry.HOOKS


@pytest.mark.parametrize('scope', ['mmdet', 'mmpretrain', 'mmengine'])
@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_backbones_build_by_plain_name_in_every_scope(scope, name):
    models, _ = scope_registries(scope)
    backbone = in_scope(scope, lambda: models.build(dict(BACKBONES[name])))
    assert type(backbone).__name__ == name
    odconvs = [m for m in backbone.modules() if isinstance(m, ODConv2d)]
    assert odconvs and all(m.kernel_num == 2 for m in odconvs)
    backbone.eval()
    with torch.no_grad():
        out = backbone(torch.randn(2, 3, 32, 32))
    assert len(out) == 1 and out[0].shape[0] == 2


@pytest.mark.parametrize('scope', ['mmdet', 'mmpretrain', 'mmengine'])
def test_temperature_hook_builds_by_plain_name_in_every_scope(scope):
    from odconv_mmdet.hooks import ODConvTemperatureHook
    _, hooks = scope_registries(scope)
    hook = in_scope(scope, lambda: hooks.build(dict(type='ODConvTemperatureHook', init_temperature=30.0,
                                                    anneal_iters=100)))
    assert isinstance(hook, ODConvTemperatureHook) and hook.init_temperature == 30.0


def test_mmpretrain_registers_none_of_our_names():
    require_mmpretrain()
    import mmpretrain.registry as registry
    import mmpretrain.models  # noqa: F401
    import mmpretrain.engine  # noqa: F401
    from mmpretrain.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    for name in list(BACKBONES) + ['ODConv']:
        assert registry.MODELS._module_dict.get(name) is None, name
    assert registry.HOOKS._module_dict.get('ODConvTemperatureHook') is None


def test_the_plugin_needs_no_mmpretrain():
    # mmpretrain made unimportable: the plugin still imports and its root names still build
    import subprocess
    import sys
    code = ('import sys; sys.modules["mmpretrain"] = None\n'
            'import odconv_mmdet\n'
            'from mmengine.registry import DefaultScope, HOOKS, MODELS\n'
            'with DefaultScope.overwrite_default_scope("mmengine"):\n'
            '    net = MODELS.build(dict(type="ODResNet", depth=18, base_channels=8))\n'
            '    hook = HOOKS.build(dict(type="ODConvTemperatureHook", anneal_iters=10))\n'
            'print(type(net).__name__, type(hook).__name__)\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ['ODResNet', 'ODConvTemperatureHook']


def test_odconv_backbone_wraps_mmdet_backbones_from_any_scope_and_refuses_to_convert_nothing():
    from mmengine.registry import MODELS
    from mmdet.models.backbones import ResNet
    wrapped = in_scope('mmengine', lambda: MODELS.build(dict(BACKBONES['ODConvBackbone'])))
    assert type(wrapped.backbone) is ResNet  # mmdet's, though the root registry has no ResNet
    with pytest.raises(ValueError, match="no conv of .*SSDVGG lies in a residual block"):
        MODELS.build(dict(type='ODConvBackbone', backbone=dict(type='SSDVGG', depth=11, out_indices=(3, 4))))
    with pytest.raises(ValueError, match='include / exclude leave no conv'):
        MODELS.build(dict(BACKBONES['ODConvBackbone'], exclude=['*']))
