"""ODConv under OpenMMLab's own conv tools: fusing conv + BN, efficient_conv_bn_eval (mmcv's
ConvModule and mmengine's fx pass), torch.fx tracing, re-parametrisations, and the attention
norm that follows a backbone's norm_cfg."""
import copy

import pytest
import torch
import torch.fx
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmcv.cnn import fuse_conv_bn as mmcv_fuse_conv_bn
from mmdet.registry import MODELS
from mmengine.model.efficient_conv_bn_eval import turn_on_efficient_conv_bn_eval

import odconv_mmdet
from odconv_mmdet import fuse_conv_bn
from odconv_mmdet.layers.odconv import AttentionBatchNorm2d, ODConv2d
from odconv_mmdet.testing.official import reference_odconv


def batch_norm_by_definition(bn, y):
    """An eval-mode BatchNorm from its formula."""
    shape = (1, -1, 1, 1)
    return ((y - bn.running_mean.view(shape)) / torch.sqrt(bn.running_var.view(shape) + bn.eps)
            * bn.weight.view(shape) + bn.bias.view(shape))


def with_trained_norms(model, x, steps=4):
    """Running statistics away from (0, 1) and affine parameters away from (1, 0), as after
    training; returns the model in eval mode."""
    torch.manual_seed(1)
    model.train()
    with torch.no_grad():
        for _ in range(steps):
            model(x * (1 + 2 * torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype)) + 0.5)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    model.eval()
    return model


def odresnet(**kwargs):
    return MODELS.build(dict(type='ODResNet', depth=18, kernel_num=4, base_channels=16, **kwargs))


def relative_error(a, b):
    return ((a - b).abs().max() / (b.max() - b.min())).item()


# ---------------------------------------------------------------- fusing conv and BN


def fused_odresnet(fuse):
    """A trained-norm ODResNet fused by ``fuse``, after checking that its eval outputs stayed."""
    x = torch.randn(4, 3, 64, 64)
    model = with_trained_norms(odresnet(), x)
    with torch.no_grad():
        before = model(x)
        fused = fuse(copy.deepcopy(model))
        for a, b in zip(fused(x), before):
            assert relative_error(a, b) < 1e-5
    return fused


def test_mmcv_fuse_conv_bn_keeps_an_odconv_models_outputs():
    """mmcv's function fuses each attention's fc with its bn (the layer applies the fc bias it
    then gets); the model's outputs stay, to float32 rounding."""
    layer = fused_odresnet(mmcv_fuse_conv_bn).layer1[0].conv1
    assert isinstance(layer.attention.bn, nn.Identity) and layer.attention.fc.bias is not None


def test_fuse_conv_bn_folds_the_bn_after_an_odconv_layer_float64():
    torch.manual_seed(0)
    conv = ODConv2d(8, 12, 3, padding=1, groups=2, kernel_num=4).double()
    model = with_trained_norms(nn.Sequential(conv, nn.BatchNorm2d(12).double()), torch.randn(6, 8, 9, 9).double())
    x = torch.randn(3, 8, 9, 9, dtype=torch.float64)
    sd = {k: v.clone() for k, v in conv.state_dict().items()}
    expected = batch_norm_by_definition(model[1], reference_odconv(sd, x, kernel_size=3, padding=1, groups=2,
                                                                   kernel_num=4))
    fused = fuse_conv_bn(model)
    assert isinstance(fused[1], nn.Identity) and isinstance(fused[0].attention.bn, nn.Identity)
    assert fused[0].bias is not None and fused[0].weight.shape == (4, 12, 4, 3, 3)
    with torch.no_grad():
        assert torch.allclose(fused(x), expected, rtol=1e-10, atol=1e-10)


def test_fuse_conv_bn_removes_every_bn_of_an_odresnet_and_keeps_its_outputs():
    fused = fused_odresnet(fuse_conv_bn)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in fused.modules())
    assert isinstance(fused.layer2[0].norm2, nn.Identity) and fused.layer2[0].conv2.bias is not None


# ---------------------------------------------------------------- efficient_conv_bn_eval


@pytest.mark.parametrize('out_channels', [12, 4])  # 4 == K: mmcv's own arithmetic would broadcast silently
def test_conv_module_efficient_conv_bn_eval_with_odconv(out_channels):
    torch.manual_seed(0)
    args = (8, out_channels, 3)
    kwargs = dict(padding=1, conv_cfg=dict(type='ODConv', kernel_num=4), norm_cfg=dict(type='BN'))
    efficient = ConvModule(*args, efficient_conv_bn_eval=True, **kwargs)
    plain = ConvModule(*args, **kwargs)
    x = torch.randn(4, 8, 9, 9)
    with_trained_norms(efficient, x)
    plain.load_state_dict(efficient.state_dict())
    plain.eval()
    sd = {k[len('conv.'):]: v for k, v in efficient.state_dict().items() if k.startswith('conv.')}
    expected = torch.relu(batch_norm_by_definition(
        efficient.norm, reference_odconv(sd, x, kernel_size=3, padding=1, kernel_num=4)))
    with torch.no_grad():
        out = efficient(x)
        assert torch.allclose(out, expected, atol=1e-5)
        assert torch.allclose(out, plain(x), atol=1e-5)
    assert 'forward' not in efficient.conv.__dict__  # the one-call override is gone
    # training with the norm in train mode takes the ordinary conv + BN, as without the option
    efficient.train()
    plain.train()
    assert torch.allclose(efficient(x), plain(x), atol=1e-5)


def test_conv_module_efficient_conv_bn_eval_leaves_no_patch_after_an_error():
    module = ConvModule(8, 12, 3, padding=1, conv_cfg=dict(type='ODConv', kernel_num=4), norm_cfg=dict(type='BN'),
                        efficient_conv_bn_eval=True)
    module.eval()
    with pytest.raises(ValueError, match='expects 8 input channels, got 5'):
        module(torch.randn(2, 5, 9, 9))
    assert 'forward' not in module.conv.__dict__
    module.train()
    assert module(torch.randn(2, 8, 9, 9)).shape == (2, 12, 9, 9)


class Detector(nn.Module):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, x):
        return self.backbone(x)


@pytest.mark.parametrize('cfg', [
    dict(type='ODResNet', depth=18, kernel_num=4, base_channels=16),
    dict(type='ODConvBackbone', kernel_num=4, backbone=dict(type='ResNet', depth=18, base_channels=16)),
])
def test_mmengine_efficient_conv_bn_eval_on_odconv_backbones(cfg):
    x = torch.randn(2, 3, 64, 64)
    model = Detector(with_trained_norms(MODELS.build(cfg), x))
    with torch.no_grad():
        before = model(x)
        turn_on_efficient_conv_bn_eval(model, ['backbone'])  # what the Runner's option calls
        after = model(x)
    for a, b in zip(after, before):
        assert relative_error(a, b) < 1e-5


# ---------------------------------------------------------------- torch.fx


@pytest.mark.parametrize('kwargs', [dict(kernel_size=3, kernel_num=4), dict(kernel_size=1, kernel_num=1),
                                    dict(kernel_size=3, kernel_num=2, groups=4, stride=2),
                                    dict(kernel_size=3, kernel_num=1, groups=8, out_channels=8)])
def test_symbolic_trace_of_the_layer_computes_the_reference(kwargs):
    torch.manual_seed(0)
    kwargs = {'in_channels': 8, 'out_channels': 16, 'padding': kwargs['kernel_size'] // 2, **kwargs}
    layer = ODConv2d(**kwargs).double()
    with_trained_norms(layer, torch.randn(4, 8, 10, 10, dtype=torch.float64))
    traced = torch.fx.symbolic_trace(layer)
    x = torch.randn(3, 8, 10, 10, dtype=torch.float64)
    sd = layer.state_dict()
    expected = reference_odconv(sd, x, kernel_size=kwargs['kernel_size'], stride=kwargs.get('stride', 1),
                                padding=kwargs['padding'], groups=kwargs.get('groups', 1),
                                kernel_num=kwargs['kernel_num'])
    with torch.no_grad():
        assert torch.allclose(traced(x), expected, rtol=1e-10, atol=1e-10)
        assert traced(x[:1]).shape == (1,) + expected.shape[1:]  # the batch is not frozen in


@pytest.mark.parametrize('cfg', [
    dict(type='ODResNet', depth=18, kernel_num=4, base_channels=16),
    dict(type='ODConvBackbone', kernel_num=4, backbone=dict(type='ResNet', depth=18, base_channels=16)),
])
def test_symbolic_trace_of_odconv_backbones(cfg):
    x = torch.randn(2, 3, 64, 64)
    model = with_trained_norms(MODELS.build(cfg), x)
    traced = torch.fx.symbolic_trace(model)
    called = {n.target for n in traced.graph.nodes if n.op == 'call_module'}
    odconvs = {n for n, m in model.named_modules() if isinstance(m, ODConv2d)}
    assert odconvs and odconvs <= called  # each layer one call, as an nn.Conv2d is
    with torch.no_grad():
        for a, b in zip(traced(x), model(x)):
            assert torch.equal(a, b)


def test_eager_input_errors_stay_clear():
    with pytest.raises(ValueError, match='expects a 4-D input'):
        ODConv2d(8, 8, 3)(torch.randn(8, 5, 5))


# ---------------------------------------------------------------- re-parametrisations


@pytest.mark.parametrize('apply', [
    lambda m: torch.nn.utils.spectral_norm(m),
    lambda m: torch.nn.utils.parametrizations.spectral_norm(m),
    pytest.param(lambda m: torch.nn.utils.parametrizations.weight_norm(m), marks=pytest.mark.skipif(
        not hasattr(torch.nn.utils.parametrizations, 'weight_norm'), reason='torch < 2.1 has no parametrized weight_norm')),
])
def test_weight_reparametrisations_are_refused_and_leave_the_layer_intact(apply):
    layer = ODConv2d(8, 8, 3, padding=1, kernel_num=4)
    state = copy.deepcopy(layer.state_dict())
    x = torch.randn(2, 8, 6, 6)
    layer.eval()
    before = layer(x)
    with pytest.raises(TypeError, match='cannot be removed or re-parametrised'):
        apply(layer)
    assert type(layer) is ODConv2d and isinstance(layer.weight, nn.Parameter)
    assert not layer._forward_pre_hooks and layer.state_dict().keys() == state.keys()
    assert torch.equal(layer(x), before)


def test_conv_module_with_spectral_norm_is_refused_when_built():
    with pytest.raises(TypeError, match='spectral_norm'):
        ConvModule(8, 8, 3, conv_cfg=dict(type='ODConv', kernel_num=4), with_spectral_norm=True)


# ---------------------------------------------------------------- the attention norm follows norm_cfg


def attention_norms(model):
    return {type(layer.attention.bn) for layer in odconv_mmdet.odconv_layers(model)}


@pytest.mark.parametrize('cfg, expected', [
    (dict(type='ODResNet', depth=18, kernel_num=4), AttentionBatchNorm2d),
    (dict(type='ODResNet', depth=18, kernel_num=4, norm_cfg=dict(type='SyncBN')), AttentionBatchNorm2d),
    (dict(type='ODResNet', depth=18, kernel_num=4, norm_cfg=dict(type='GN', num_groups=16)), nn.GroupNorm),
    (dict(type='ODResNet', depth=18, kernel_num=4, norm_cfg=dict(type='GN', num_groups=16), attention_norm='BN'),
     AttentionBatchNorm2d),
    (dict(type='ODConvBackbone', backbone=dict(type='ResNet', depth=18, norm_cfg=dict(type='GN', num_groups=32))),
     nn.GroupNorm),
    (dict(type='ODConvBackbone', backbone=dict(type='ResNet', depth=18)), AttentionBatchNorm2d),
    (dict(type='ODMobileNetV2', norm_cfg=dict(type='GN', num_groups=8)), nn.GroupNorm),
])
def test_attention_norm_follows_the_backbone_norm_cfg(cfg, expected):
    assert attention_norms(MODELS.build(cfg)) == {expected}


def test_a_gn_odresnet_is_independent_of_the_batch():
    model = MODELS.build(dict(type='ODResNet', depth=18, kernel_num=4, base_channels=16,
                              norm_cfg=dict(type='GN', num_groups=8))).double()
    model.train()
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    together = model(x)[-1]
    alone = torch.cat([model(x[i:i + 1])[-1] for i in range(3)])
    assert torch.allclose(together, alone, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------- other mmcv / mmengine conv utilities


def test_mmcv_flops_counter_counts_odconv_as_our_madds_counter():
    from mmcv.cnn import get_model_complexity_info
    from odconv_mmdet.utils.madds import count_madds
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), ODConv2d(16, 32, 3, padding=1, kernel_num=4),
                          ODConv2d(32, 32, 1, kernel_num=1))
    model.eval()
    flops, _ = get_model_complexity_info(model, (3, 32, 32), print_per_layer_stat=False, as_strings=False)
    ours = count_madds(model, lambda: model(torch.ones(1, 3, 32, 32)))
    assert ours['odconv_conv'] > 0 and flops == sum(ours.values())


def test_depthwise_separable_conv_module_and_padding_modes_with_odconv():
    from mmcv.cnn import DepthwiseSeparableConvModule
    torch.manual_seed(0)
    module = DepthwiseSeparableConvModule(16, 32, 3, padding=1, conv_cfg=dict(type='ODConv', kernel_num=4),
                                          norm_cfg=dict(type='BN'))
    assert isinstance(module.depthwise_conv.conv, ODConv2d) and module.depthwise_conv.conv.groups == 16
    assert module(torch.randn(2, 16, 8, 8)).shape == (2, 32, 8, 8)
    reflect = ConvModule(8, 8, 3, padding=1, padding_mode='reflect', conv_cfg=dict(type='ODConv', kernel_num=1))
    reflect.eval()
    x = torch.randn(2, 8, 6, 6, dtype=torch.float64)
    reflect.double()
    sd = reflect.conv.state_dict()
    expected = torch.relu(reference_odconv(sd, torch.nn.functional.pad(x, (1, 1, 1, 1), mode='reflect'),
                                           kernel_size=3, kernel_num=1))
    assert torch.allclose(reflect(x), expected, rtol=1e-10, atol=1e-10)


def test_revert_sync_batchnorm_keeps_batch1_training():
    from mmengine.model import revert_sync_batchnorm
    model = revert_sync_batchnorm(nn.SyncBatchNorm.convert_sync_batchnorm(
        nn.Sequential(ODConv2d(16, 16, 3, padding=1, kernel_num=4))))
    assert not isinstance(model[0].attention.bn, nn.SyncBatchNorm)
    model.train()
    assert model(torch.randn(1, 16, 8, 8)).shape == (1, 16, 8, 8)
