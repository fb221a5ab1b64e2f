"""The dynamic-conv family from one layer: ODConv's attention subsets, CondConv and DyConv.

Each is checked against an independent float64 computation written from the papers' equations
(shared/docs/dynamic-convs-reference.md), sample by sample, in every formulation; then their
state dicts, errors, registration, temperature, static inflation and OpenMMLab's conv tools."""
import copy
import io
import math
import warnings

import numpy as np
import pytest
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_conv_layer
from mmdet.registry import MODELS

import odconv_mmdet
from odconv_mmdet import fuse_conv_bn
from odconv_mmdet.layers import CondConv2d, DyConv2d, ODConv2d, set_temperature
from odconv_mmdet.utils.madds import count_madds
from .test_odconv_layer import randomize

PATHS = ('per_sample', 'batched_matmul', 'shared_matmul')


def sigmoid(v):
    return 1 / (1 + torch.exp(-v))


def linear(sd, name, z):
    out = z @ sd[name + '.weight'].flatten(1).t()
    return out + sd[name + '.bias'] if name + '.bias' in sd else out


def conv_sample(x, weight, layer):
    return F.conv2d(x[None], weight, None, layer.stride, layer.padding, layer.dilation, layer.groups)[0]


def reference_odconv_subset(layer, x):
    """ODConv with some attentions, per sample, an absent attention being 1 (eval-mode BN)."""
    sd = {k: v.clone() for k, v in layer.state_dict().items()}
    t, k = layer.temperature, layer.kernel_size[0]
    out = []
    for xb in x:
        if 'attention.fc.weight' not in sd:  # no head: the static kernel
            out.append(conv_sample(xb, sd['weight'][0], layer))
            continue
        z = linear(sd, 'attention.fc', xb.mean(dim=(1, 2)))
        z = (z - sd['attention.bn.running_mean']) / torch.sqrt(sd['attention.bn.running_var'] + 1e-5)
        z = torch.relu(z * sd['attention.bn.weight'] + sd['attention.bn.bias'])
        head = {name: name + '_fc' in layer.attentions_built for name in ('channel', 'filter', 'spatial', 'kernel')}
        ones = dict(dtype=x.dtype)
        a_c = sigmoid(linear(sd, 'attention.channel_fc', z) / t) if head['channel'] else torch.ones(xb.size(0), **ones)
        a_f = sigmoid(linear(sd, 'attention.filter_fc', z) / t) if head['filter'] else torch.ones(layer.out_channels, **ones)
        a_s = sigmoid(linear(sd, 'attention.spatial_fc', z) / t).view(k, k) if head['spatial'] else torch.ones(k, k, **ones)
        a_w = torch.softmax(linear(sd, 'attention.kernel_fc', z) / t, 0) if head['kernel'] else torch.ones(1, **ones)
        weight = sum(a_w[i] * a_s * sd['weight'][i] for i in range(layer.kernel_num))
        out.append(conv_sample(xb * a_c.view(-1, 1, 1), weight, layer) * a_f.view(-1, 1, 1))
    return torch.stack(out)


def reference_mixture(layer, x, routing):
    """CondConv / DyConv: W_b = sum_i pi_i(x_b) W_i, bias_b = sum_i pi_i b_i."""
    sd = {k: v.clone() for k, v in layer.state_dict().items()}
    out = []
    for xb in x:
        pooled = xb.mean(dim=(1, 2))
        if routing == 'CondConv':
            pi = sigmoid(linear(sd, 'attention.kernel_fc', pooled))
        else:
            hidden = torch.relu(linear(sd, 'attention.fc', pooled))
            pi = torch.softmax(linear(sd, 'attention.kernel_fc', hidden) / layer.temperature, 0)
        weight = sum(pi[i] * sd['weight'][i] for i in range(layer.kernel_num))
        y = conv_sample(xb, weight, layer)
        if 'bias' in sd:
            y = y + sum(pi[i] * sd['bias'][i] for i in range(layer.kernel_num)).view(-1, 1, 1)
        out.append(y)
    return torch.stack(out)


def heads_of(layer):
    return {name for name in ('channel_fc', 'filter_fc', 'spatial_fc', 'kernel_fc')
            if getattr(layer.attention, name, None) is not None}


SUBSETS = {  # name: (in, out, k, stride, padding, groups, K, attentions)
    'spatial_K1': (8, 16, 3, 1, 1, 1, 1, ('spatial',)),
    'channel_K1': (8, 16, 3, 2, 1, 1, 1, ('channel',)),
    'filter_K1': (8, 16, 3, 1, 1, 1, 1, ('filter',)),
    'kernel_K4': (8, 16, 3, 1, 1, 1, 4, ('kernel',)),
    'kernel_channel_K4_grouped': (8, 16, 3, 1, 1, 2, 4, ('channel', 'kernel')),
    'filter_1x1_K1': (8, 16, 1, 1, 0, 1, 1, ('filter',)),
    'spatial_filter_K1_depthwise': (16, 16, 3, 1, 1, 16, 1, ('spatial', 'filter')),
    'all_K4_5x5': (8, 12, 5, 2, 2, 1, 4, ('spatial', 'channel', 'filter', 'kernel')),
    'no_head_1x1': (8, 16, 1, 1, 0, 1, 1, ('spatial',)),
}


def build_subset(name, **kwargs):
    cin, cout, k, s, p, g, kn, attentions = SUBSETS[name]
    layer = ODConv2d(cin, cout, k, stride=s, padding=p, groups=g, kernel_num=kn, attentions=attentions, **kwargs)
    layer.attentions_built = heads_of(layer)
    return layer


@pytest.mark.parametrize('name', sorted(SUBSETS))
@pytest.mark.parametrize('path', PATHS)
def test_attention_subsets_match_the_equations(name, path):
    layer = randomize(build_subset(name)).double().eval()
    if path == 'shared_matmul' and layer.groups != 1:
        pytest.skip('shared_matmul is for groups=1')
    layer.conv_path = path
    layer.update_temperature(2.3)
    x = torch.randn(3, layer.in_channels, 9, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(layer(x), reference_odconv_subset(layer, x), rtol=1e-9, atol=1e-10)


def test_a_subset_builds_only_its_heads_and_the_shape_rules_still_apply():
    assert heads_of(build_subset('spatial_K1')) == {'spatial_fc'}
    assert heads_of(build_subset('kernel_channel_K4_grouped')) == {'channel_fc', 'kernel_fc'}
    # filter absent for depthwise, spatial absent for 1x1, as in the official layer
    assert heads_of(build_subset('spatial_filter_K1_depthwise')) == {'spatial_fc'}
    no_head = build_subset('no_head_1x1')
    assert set(no_head.state_dict()) == {'weight'}
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(no_head(x), F.conv2d(x, no_head.weight[0]))
    # the default is the official layer: all four (kernel only with K > 1)
    assert heads_of(ODConv2d(8, 16, 3, kernel_num=4)) == {'channel_fc', 'filter_fc', 'spatial_fc', 'kernel_fc'}
    assert ODConv2d(8, 16, 3, kernel_num=1).attentions == ('spatial', 'channel', 'filter')
    assert "attentions=('spatial',)" in repr(build_subset('spatial_K1'))


@pytest.mark.parametrize('kwargs, exc, message', [
    (dict(attentions=('spatial', 'colour')), ValueError, r"unknown names \['colour'\]"),
    (dict(attentions=()), ValueError, 'at least one'),
    (dict(attentions=('kernel',), kernel_num=1), ValueError, "'kernel' needs kernel_num > 1"),
    (dict(attentions=('spatial', 'channel'), kernel_num=4), ValueError, "without 'kernel' need kernel_num=1"),
    (dict(attentions=('channel', 'channel')), ValueError, 'names an attention twice'),
    (dict(attentions='channel'), TypeError, 'list or tuple of attention names'),
])
def test_bad_attention_subsets_are_named(kwargs, exc, message):
    kwargs.setdefault('kernel_num', 1)
    with pytest.raises(exc, match=message):
        ODConv2d(8, 16, 3, **kwargs)


def test_full_set_checkpoints_load_exactly_and_subsets_refuse_foreign_heads():
    full = randomize(ODConv2d(8, 16, 3, kernel_num=4))
    again = ODConv2d(8, 16, 3, kernel_num=4, attentions=['kernel', 'filter', 'channel', 'spatial'])
    again.load_state_dict(full.state_dict())  # strict
    x = torch.randn(2, 8, 6, 6)
    torch.testing.assert_close(again.eval()(x), full.eval()(x))
    with pytest.raises(RuntimeError, match='spatial_fc'):
        ODConv2d(8, 16, 3, kernel_num=4, attentions=('kernel', 'filter', 'channel')).load_state_dict(full.state_dict())


# ---------------------------------------------------------------- CondConv and DyConv

MIXTURES = {  # name: (class, in, out, k, stride, padding, groups, K, bias)
    'condconv_3x3_bias': (CondConv2d, 8, 16, 3, 1, 1, 1, 8, True),
    'condconv_1x1_stride2': (CondConv2d, 8, 16, 1, 2, 0, 1, 3, False),
    'dyconv_3x3_bias': (DyConv2d, 8, 16, 3, 1, 1, 1, 4, True),
    'dyconv_depthwise': (DyConv2d, 16, 16, 3, 2, 1, 16, 4, False),
}


def build_mixture(name):
    cls, cin, cout, k, s, p, g, kn, bias = MIXTURES[name]
    return cls(cin, cout, k, stride=s, padding=p, groups=g, kernel_num=kn, bias=bias)


@pytest.mark.parametrize('name', sorted(MIXTURES))
@pytest.mark.parametrize('path', PATHS)
def test_condconv_and_dyconv_match_their_papers(name, path):
    layer = randomize(build_mixture(name)).double()
    if path == 'shared_matmul' and layer.groups != 1:
        pytest.skip('shared_matmul is for groups=1')
    layer.conv_path = path
    if isinstance(layer, DyConv2d):
        layer.update_temperature(3.1)
    x = torch.randn(3, layer.in_channels, 9, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    routing = 'CondConv' if isinstance(layer, CondConv2d) else 'DyConv'
    torch.testing.assert_close(layer(x), reference_mixture(layer, x, routing), rtol=1e-9, atol=1e-10)


def test_condconv_and_dyconv_parameters_defaults_and_gradients():
    cond, dy = CondConv2d(8, 16, 3, bias=True), DyConv2d(32, 16, 3, bias=True)
    assert cond.kernel_num == 8 and dy.kernel_num == 4
    assert {k: tuple(v.shape) for k, v in cond.state_dict().items()} == {
        'weight': (8, 16, 8, 3, 3), 'bias': (8, 16), 'attention.kernel_fc.weight': (8, 8, 1, 1),
        'attention.kernel_fc.bias': (8,)}
    assert {k: tuple(v.shape) for k, v in dy.state_dict().items()} == {
        'weight': (4, 16, 32, 3, 3), 'bias': (4, 16), 'attention.fc.weight': (8, 32, 1, 1),
        'attention.fc.bias': (8,), 'attention.kernel_fc.weight': (4, 8, 1, 1), 'attention.kernel_fc.bias': (4,)}
    for layer in (cond, dy):
        layer = randomize(layer).double()
        x = torch.randn(2, layer.in_channels, 5, 5, dtype=torch.float64, requires_grad=True)
        params = tuple(p for p in layer.parameters())
        assert torch.autograd.gradcheck(lambda x, *p: torch.func.functional_call(
            layer, dict(zip([n for n, _ in layer.named_parameters()], p)), (x,)), (x, *params))


@pytest.mark.parametrize('cls, kwargs, message', [
    (CondConv2d, dict(kernel_num=1), 'kernel_num must be an integer >= 2'),
    (DyConv2d, dict(kernel_num=True), 'kernel_num must be an integer >= 2'),
    (DyConv2d, dict(reduction=0), r'reduction must be a number in \(0, 1\]'),
    (CondConv2d, dict(groups=3), 'must both be divisible by groups'),
    (DyConv2d, dict(padding_mode='reflect'), "DyConv2d supports padding_mode='zeros' only"),
])
def test_bad_condconv_and_dyconv_arguments_are_named(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(8, 16, 3, **kwargs)


def test_registered_conv_types_build_from_any_scope():
    from mmengine.registry import DefaultScope
    for scope in ('mmdet', 'mmengine'):
        with DefaultScope.overwrite_default_scope(scope):
            cond = build_conv_layer(dict(type='CondConv'), 8, 16, 3, padding=1)
            dy = build_conv_layer(dict(type='DyConv', kernel_num=2), 8, 16, 3, padding=1)
        assert type(cond) is CondConv2d and cond.kernel_num == 8
        assert type(dy) is DyConv2d and dy.kernel_num == 2
    module = ConvModule(8, 16, 3, padding=1, conv_cfg=dict(type='DyConv'), norm_cfg=dict(type='BN'))
    assert isinstance(module.conv, DyConv2d) and module.conv.bias is None  # bias='auto' with a norm
    assert module(torch.randn(2, 8, 6, 6)).shape == (2, 16, 6, 6)


def test_temperature_reaches_dyconv_and_odconv_but_not_condconv():
    model = nn.Sequential(ODConv2d(8, 8, 3, padding=1), DyConv2d(8, 8, 3, padding=1), CondConv2d(8, 8, 3, padding=1))
    assert set_temperature(model, 7.0) == 2
    assert model[0].temperature == model[1].temperature == 7.0
    with pytest.raises(TypeError, match='CondConv2d has no attention temperature'):
        model[2].update_temperature(2.0)
    # the temperature divides DyConv's logits: at a high T its attention is near uniform
    dy = randomize(DyConv2d(8, 8, 3, padding=1))
    x = torch.randn(4, 8, 6, 6)
    spread = []
    for t in (1.0, 1000.0):
        dy.update_temperature(t)
        spread.append(dy.attention(x)[3].std().item())
    assert spread[1] < spread[0] / 100


def test_hook_warns_when_only_condconv_is_there(tmp_path):
    from odconv_mmdet.hooks import ODConvTemperatureHook

    class Runner:
        model = nn.Sequential(CondConv2d(8, 8, 3))
    with pytest.warns(UserWarning, match='CondConv has no temperature'):
        ODConvTemperatureHook(anneal_iters=4).before_run(Runner())


@pytest.mark.parametrize('cls', [CondConv2d, DyConv2d])
def test_static_weights_inflate_exactly_and_the_kernels_can_diverge(cls):
    torch.manual_seed(0)
    static = nn.Conv2d(8, 16, 3, padding=1, bias=True)
    layer = cls(8, 16, 3, padding=1, bias=True, kernel_num=4)
    layer.load_state_dict(static.state_dict())
    assert layer.inflated_on_load and layer.bias.shape == (4, 16)
    x = torch.randn(3, 8, 7, 7)
    torch.testing.assert_close(layer(x), static(x), rtol=1e-5, atol=1e-5)
    layer(x).square().mean().backward()
    # Not a symmetric copy that training could never part: DyConv's kernels get different
    # gradients at once; CondConv's routing starts uniform, so its kernels' gradients are equal
    # at first, but its routing rows' are not (the kernels differ), and the routing then parts them.
    grads = layer.weight.grad if cls is DyConv2d else layer.attention.kernel_fc.weight.grad
    assert (grads[0] - grads[1]).abs().max() > 1e-3 * grads.abs().max()


# ---------------------------------------------------------------- the conv tools, for each variant

VARIANTS = {
    'odconv_channel_filter_K1': lambda: ODConv2d(8, 16, 3, padding=1, kernel_num=1, attentions=('channel', 'filter')),
    'odconv_kernel_K4': lambda: ODConv2d(8, 16, 3, padding=1, kernel_num=4, attentions=('kernel',)),
    'condconv': lambda: CondConv2d(8, 16, 3, padding=1, kernel_num=4),
    'dyconv_bias': lambda: DyConv2d(8, 16, 3, padding=1, bias=True),
}


def trained_bn(channels):
    bn = nn.BatchNorm2d(channels)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    return bn.eval()


@pytest.mark.parametrize('name', sorted(VARIANTS))
def test_bn_folding_fusing_tracing_scripting_and_flops_for_each_variant(name):
    torch.manual_seed(0)
    layer = randomize(VARIANTS[name]()).eval()
    bn = trained_bn(16)
    x = torch.randn(3, 8, 7, 7)
    with torch.no_grad():
        expected = bn(layer(x))
        torch.testing.assert_close(layer.conv_bn_eval_forward(bn, x), expected, rtol=1e-5, atol=1e-5)
        fused = fuse_conv_bn(nn.Sequential(copy.deepcopy(layer), copy.deepcopy(bn)))
        assert isinstance(fused[1], nn.Identity)
        torch.testing.assert_close(fused(x), expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(torch.fx.symbolic_trace(layer)(x), layer(x))
        torch.testing.assert_close(torch.jit.script(layer)(x), layer(x), rtol=1e-5, atol=1e-6)
    from mmcv.cnn import get_model_complexity_info
    flops, _ = get_model_complexity_info(layer, (8, 7, 7), print_per_layer_stat=False, as_strings=False)
    ours = count_madds(layer, lambda: layer(torch.ones(1, 8, 7, 7)))
    assert ours['odconv_conv'] == 16 * 8 * 9 * 49 and flops == sum(ours.values())


def test_condconv_with_per_kernel_bias_folds_in_conv_module_but_refuses_fusing():
    torch.manual_seed(0)
    layer = randomize(CondConv2d(8, 16, 3, padding=1, bias=True, kernel_num=4)).eval()
    bn = trained_bn(16)
    x = torch.randn(3, 8, 7, 7)
    with torch.no_grad():
        torch.testing.assert_close(layer.conv_bn_eval_forward(bn, x), bn(layer(x)), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match='sigmoid routing weights do not sum to 1'):
        fuse_conv_bn(nn.Sequential(layer, bn))


def test_madds_count_each_variants_own_attention():
    def madds(layer):
        return count_madds(layer, lambda: layer(torch.ones(2, 32, 8, 8)))
    cond, dy = madds(CondConv2d(32, 16, 3, padding=1)), madds(DyConv2d(32, 16, 3, padding=1))
    assert cond['odconv_attention'] == 2 * 32 * 8 and dy['odconv_attention'] == 2 * (32 * 8 + 8 * 4)
    assert cond['odconv_attention_products'] == dy['odconv_attention_products'] == 0
    channel_only = madds(ODConv2d(32, 16, 3, padding=1, kernel_num=1, attentions=('channel',)))
    # fc 32 -> 16 and channel_fc 16 -> 32; the channel attention on the 32 x 8 x 8 input; no kernel built
    assert channel_only['odconv_attention'] == 2 * (32 * 16 + 16 * 32)
    assert channel_only['odconv_attention_products'] == 2 * 32 * 64
    assert channel_only['odconv_kernel_aggregation'] == 0


@pytest.mark.parametrize('name', sorted(VARIANTS))
def test_onnx_export_of_each_variant(name):
    onnxruntime = pytest.importorskip('onnxruntime')
    from odconv_mmdet.utils.onnx_export import export_torchscript_onnx
    torch.manual_seed(0)
    layer = randomize(VARIANTS[name]()).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        export_torchscript_onnx(layer, torch.randn(2, 8, 9, 7), buffer, input_names=['x'], output_names=['y'],
                                dynamic_axes={'x': {0: 'batch'}})
    session = onnxruntime.InferenceSession(buffer.getvalue(), providers=['CPUExecutionProvider'])
    for batch in (3, 1):
        x = torch.randn(batch, 8, 9, 7)
        with torch.no_grad():
            expected = layer(x)
        np.testing.assert_allclose(session.run(None, {'x': x.numpy()})[0], expected.numpy(), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- backbones

@pytest.mark.parametrize('cfg, layer_type, count', [
    (dict(type='ODResNet', depth=18, kernel_num=1, attentions=('spatial',)), ODConv2d, 16),
    (dict(type='ODMobileNetV2', kernel_num=4, attentions=('kernel', 'filter'), widen_factor=0.25), ODConv2d, 51),
    (dict(type='ODConvBackbone', conv_type='DyConv', backbone=dict(type='ResNet', depth=18)), DyConv2d, 16),
    (dict(type='ODConvBackbone', conv_type='CondConv', kernel_num=8, backbone=dict(type='ResNet', depth=18)),
     CondConv2d, 16),
])
def test_backbones_take_the_choice_and_inflate_static_weights(cfg, layer_type, count):
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    layers = [m for m in model.modules() if isinstance(m, ODConv2d)]
    assert len(layers) == count and all(type(m) is layer_type for m in layers)
    if cfg.get('attentions'):
        assert all(m.attentions == tuple(a for a in ('spatial', 'channel', 'filter', 'kernel')
                                         if a in cfg['attentions']) for m in layers)
    if cfg['type'] == 'ODConvBackbone':
        static = MODELS.build(cfg['backbone'])
        static.eval()
        model.load_state_dict(static.state_dict())
        model.eval()
        x = torch.randn(2, 3, 64, 64)
        with torch.no_grad():
            for got, want in zip(model(x), static(x)):
                torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('cfg, message', [
    (dict(conv_type='CondConv', reduction=0.5), r"\['reduction'\] do not apply to conv_type='CondConv'"),
    (dict(conv_type='DyConv', attentions=('kernel',)), r"\['attentions'\] do not apply"),
    (dict(conv_type='Dynamic'), "conv_type must be one of"),
    (dict(attentions=('spatial', 'channel')), "without 'kernel' need kernel_num=1"),
])
def test_backbone_choice_errors_are_named(cfg, message):
    with pytest.raises(ValueError, match=message):
        MODELS.build(dict(type='ODConvBackbone', backbone=dict(type='ResNet', depth=18), **cfg))
