"""ODConv2d numerics, naming, gradients, batch-1 training and input validation."""
import copy
import math

import pytest
import torch
import torch.nn as nn

from odconv_mmdet.layers.odconv import ODConv2d, odconv_layers, set_temperature
from odconv_mmdet.testing.official import reference_odconv

# (in, out, k, stride, padding, dilation, groups, K)
CASES = {
    '3x3_K4': (8, 16, 3, 1, 1, 1, 1, 4),
    '3x3_K1': (8, 16, 3, 1, 1, 1, 1, 1),
    '1x1_K1_static_path': (8, 16, 1, 1, 0, 1, 1, 1),
    '1x1_K4_stride2': (8, 16, 1, 2, 0, 1, 1, 4),
    '5x5_K4_stride2': (8, 12, 5, 2, 2, 1, 1, 4),
    '3x3_K2_dilation2': (8, 16, 3, 1, 2, 2, 1, 2),
    '3x3_K4_groups4': (8, 16, 3, 1, 1, 1, 4, 4),
    'depthwise_K4': (16, 16, 3, 1, 1, 1, 16, 4),
    'depthwise_K1_stride2': (16, 16, 3, 2, 1, 1, 16, 1),
    'groups_eq_in_not_depthwise': (16, 32, 3, 1, 1, 1, 16, 1),
}


def build(case, **kwargs):
    cin, cout, k, s, p, d, g, kn = CASES[case]
    return ODConv2d(cin, cout, k, stride=s, padding=p, dilation=d, groups=g, kernel_num=kn, **kwargs)


def randomize(module, seed=0):
    """Non-trivial parameters and BN statistics, so every attention really varies."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith('running_var'):
                t.copy_(torch.rand(t.shape, generator=gen, dtype=t.dtype) * 1.5 + 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=gen, dtype=t.dtype) * 0.5)
    return module


def expected_keys(cin, cout, k, groups, kn):
    keys = {'weight', 'attention.fc.weight', 'attention.channel_fc.weight', 'attention.channel_fc.bias',
            'attention.bn.weight', 'attention.bn.bias', 'attention.bn.running_mean',
            'attention.bn.running_var', 'attention.bn.num_batches_tracked'}
    if not (cin == groups == cout):
        keys |= {'attention.filter_fc.weight', 'attention.filter_fc.bias'}
    if k != 1:
        keys |= {'attention.spatial_fc.weight', 'attention.spatial_fc.bias'}
    if kn != 1:
        keys |= {'attention.kernel_fc.weight', 'attention.kernel_fc.bias'}
    return keys


def official_state_dict(cin, cout, k, groups, kn, reduction=0.0625):
    """A state_dict built only from the reference page's naming and shape rules."""
    a = max(int(cin * reduction), 16)
    shapes = {'weight': (kn, cout, cin // groups, k, k), 'attention.fc.weight': (a, cin, 1, 1),
              'attention.bn.weight': (a,), 'attention.bn.bias': (a,), 'attention.bn.running_mean': (a,),
              'attention.bn.running_var': (a,), 'attention.channel_fc.weight': (cin, a, 1, 1),
              'attention.channel_fc.bias': (cin,), 'attention.filter_fc.weight': (cout, a, 1, 1),
              'attention.filter_fc.bias': (cout,), 'attention.spatial_fc.weight': (k * k, a, 1, 1),
              'attention.spatial_fc.bias': (k * k,), 'attention.kernel_fc.weight': (kn, a, 1, 1),
              'attention.kernel_fc.bias': (kn,)}
    sd = {}
    for key in expected_keys(cin, cout, k, groups, kn):
        if key.endswith('num_batches_tracked'):
            sd[key] = torch.tensor(7)
        elif key.endswith('running_var'):
            sd[key] = torch.rand(shapes[key]) + 0.5
        else:
            sd[key] = torch.randn(shapes[key])
    return sd


@pytest.mark.parametrize('case', sorted(CASES))
@pytest.mark.parametrize('training', [False, True], ids=['eval', 'train'])
@pytest.mark.parametrize('temperature', [1.0, 4.7])
def test_matches_independent_per_sample_computation(case, training, temperature):
    cin, cout, k, s, p, d, g, kn = CASES[case]
    layer = randomize(build(case)).double().train(training)
    layer.update_temperature(temperature)
    sd = {name: t.clone() for name, t in layer.state_dict().items()}
    x = torch.randn(3, cin, 11, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    expected = reference_odconv(sd, x, kernel_size=k, stride=s, padding=p, dilation=d, groups=g,
                                kernel_num=kn, temperature=temperature, training=training)
    out = layer(x)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=1e-9, atol=1e-10)


def test_attentions_vary_per_sample_in_the_randomized_layer():
    # Guards the numeric test above: a layer whose attentions were constant would pass trivially.
    layer = randomize(build('3x3_K4')).eval()
    channel, filt, spatial, kernel = layer.attention(torch.randn(2, 8, 9, 9))
    for att in (channel, filt, spatial, kernel):
        assert (att[0] - att[1]).abs().max() > 1e-3


def test_bias_is_added_after_filter_attention():
    cin, cout, k, s, p, d, g, kn = CASES['3x3_K4']
    layer = randomize(ODConv2d(cin, cout, k, padding=p, kernel_num=kn, bias=True)).double().eval()
    assert layer.bias.shape == (cout,)
    sd = {n: t.clone() for n, t in layer.state_dict().items() if n != 'bias'}
    x = torch.randn(2, cin, 7, 7, dtype=torch.float64)
    expected = reference_odconv(sd, x, kernel_size=k, padding=p, kernel_num=kn, bias=layer.bias.detach())
    torch.testing.assert_close(layer(x), expected, rtol=1e-9, atol=1e-10)
    layer(x).sum().backward()
    assert layer.bias.grad is not None and layer.bias.grad.abs().sum() > 0


@pytest.mark.parametrize('case', sorted(CASES))
def test_state_dict_names_and_shapes_follow_official_rules(case):
    cin, cout, k, s, p, d, g, kn = CASES[case]
    layer = build(case)
    assert set(layer.state_dict()) == expected_keys(cin, cout, k, g, kn)
    official = official_state_dict(cin, cout, k, g, kn)
    layer.load_state_dict(official, strict=True)
    assert torch.equal(layer.weight.detach(), official['weight'])
    assert layer.attention.attention_channels == max(int(cin * 0.0625), 16)


def test_attention_width_uses_reduction_with_a_floor_of_16():
    assert ODConv2d(512, 64, 3, kernel_num=4).attention.fc.out_channels == 32
    assert ODConv2d(64, 64, 3, kernel_num=4).attention.fc.out_channels == 16
    assert ODConv2d(512, 64, 3, reduction=0.25).attention.fc.out_channels == 128


def test_default_initialisation_follows_the_official_recipe():
    torch.manual_seed(0)
    layer = ODConv2d(64, 128, 3, kernel_num=4)
    std = math.sqrt(2.0 / (128 * 3 * 3))  # kaiming normal, fan_out, relu, per candidate kernel
    for i in range(4):
        assert abs(layer.weight[i].std().item() - std) / std < 0.05
    att = layer.attention
    assert torch.all(att.bn.weight == 1) and torch.all(att.bn.bias == 0)
    for fc in (att.channel_fc, att.filter_fc, att.spatial_fc, att.kernel_fc):
        assert torch.all(fc.bias == 0)
    assert layer.bias is None


@pytest.mark.parametrize('kernel_num', [1, 4])
def test_gradcheck_grouped(kernel_num):
    layer = randomize(ODConv2d(4, 6, 3, padding=1, groups=2, kernel_num=kernel_num)).double().train()
    names = ['weight', 'attention.fc.weight', 'attention.channel_fc.weight']
    if kernel_num > 1:
        names.append('attention.kernel_fc.weight')
    params = {n: p for n, p in layer.named_parameters()}
    x = torch.randn(2, 4, 5, 5, dtype=torch.float64, requires_grad=True)
    inputs = (x, *[params[n].detach().clone().requires_grad_(True) for n in names])

    def fn(x, *tensors):
        return torch.func.functional_call(layer, dict(zip(names, tensors)), (x,))

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5)


def test_temperature_update_and_helper():
    model = nn.Sequential(build('3x3_K4'), nn.ReLU(), build('1x1_K4_stride2').__class__(16, 8, 1))
    assert len(odconv_layers(model)) == 2
    assert set_temperature(model, 12.5) == 2
    assert all(m.temperature == 12.5 for m in odconv_layers(model))
    layer = randomize(build('3x3_K4')).eval()
    x = torch.randn(2, 8, 9, 9)
    hot = layer.attention(x)
    layer.update_temperature(1e6)  # a huge T flattens every attention towards uniform
    flat = layer.attention(x)
    assert (flat[3] - 0.25).abs().max() < 1e-4 and (flat[0] - 0.5).abs().max() < 1e-4
    assert (hot[3] - 0.25).abs().max() > 1e-2
    assert 'temperature' not in ''.join(layer.state_dict())


@pytest.mark.parametrize('bad', [0, -1.0, float('nan'), float('inf'), '3', None, True])
def test_bad_temperature_is_rejected(bad):
    layer = build('3x3_K1')
    with pytest.raises((ValueError, TypeError), match='temperature'):
        layer.update_temperature(bad)
    with pytest.raises((ValueError, TypeError), match='temperature'):
        set_temperature(nn.Sequential(layer), bad)
    assert layer.temperature == 1.0


def test_batch_one_training_step_uses_running_statistics():
    layer = randomize(build('3x3_K4'))
    running = (layer.attention.bn.running_mean.clone(), layer.attention.bn.running_var.clone())
    x = torch.randn(1, 8, 9, 9)
    eval_out = copy.deepcopy(layer).eval()(x)
    layer.train()
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    out = layer(x)
    torch.testing.assert_close(out, eval_out)
    out.square().mean().backward()
    assert layer.attention.fc.weight.grad.abs().sum() > 0
    before = layer.weight.detach().clone()
    optimizer.step()
    assert not torch.equal(before, layer.weight.detach())
    assert torch.equal(layer.attention.bn.running_mean, running[0])
    assert torch.equal(layer.attention.bn.running_var, running[1])
    # With a real batch the statistics move again, as in nn.BatchNorm2d.
    layer(torch.randn(2, 8, 9, 9))
    assert not torch.equal(layer.attention.bn.running_mean, running[0])


def test_batch_norm_matches_torch_batchnorm_with_batches():
    layer = randomize(build('3x3_K4')).train()
    ref = nn.BatchNorm2d(layer.attention.attention_channels)
    ref.load_state_dict(layer.attention.bn.state_dict())
    z = torch.randn(4, layer.attention.attention_channels, 1, 1)
    torch.testing.assert_close(layer.attention.bn(z), ref(z))
    torch.testing.assert_close(layer.attention.bn.running_var, ref.running_var)
    assert layer.attention.bn.num_batches_tracked == ref.num_batches_tracked


@pytest.mark.parametrize('norm', ['GN', 'none'])
def test_other_attention_norms_train_at_batch_one(norm):
    layer = ODConv2d(8, 16, 3, padding=1, kernel_num=4, attention_norm=norm)
    x = torch.randn(1, 8, 9, 9)
    out = layer.train()(x)
    out.sum().backward()
    torch.testing.assert_close(out, layer.eval()(x))
    assert ('attention.bn.weight' in layer.state_dict()) == (norm == 'GN')


@pytest.mark.parametrize('kwargs, message', [
    (dict(in_channels=6, out_channels=8, kernel_size=3, groups=4), 'divisible by groups'),
    (dict(in_channels=8, out_channels=6, kernel_size=3, groups=4), 'divisible by groups'),
    (dict(in_channels=8, out_channels=8, kernel_size=3, kernel_num=0), 'kernel_num'),
    (dict(in_channels=8, out_channels=8, kernel_size=3, reduction=0), 'reduction'),
    (dict(in_channels=8, out_channels=8, kernel_size=3, reduction=-0.5), 'reduction'),
    (dict(in_channels=8, out_channels=8, kernel_size=(3, 5)), 'square'),
    (dict(in_channels=8, out_channels=8, kernel_size=0), 'kernel_size'),
    (dict(in_channels=0, out_channels=8, kernel_size=3), 'in_channels'),
    (dict(in_channels=8, out_channels=8, kernel_size=3, attention_norm='LN'), 'attention_norm'),
])
def test_bad_construction_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ODConv2d(**kwargs)


def test_bad_inputs_are_named():
    layer = build('3x3_K4')
    with pytest.raises(ValueError, match='4-D input.*3-D'):
        layer(torch.randn(8, 9, 9))
    with pytest.raises(ValueError, match='4-D input.*5-D'):
        layer(torch.randn(1, 1, 8, 9, 9))
    with pytest.raises(ValueError, match='expects 8 input channels, got 5'):
        layer(torch.randn(2, 5, 9, 9))


def test_conv_attributes_for_tools_that_inspect_convs():
    layer = ODConv2d(8, 16, 3, stride=2, padding=1, dilation=1, groups=2, kernel_num=4)
    assert (layer.in_channels, layer.out_channels, layer.groups) == (8, 16, 2)
    assert layer.kernel_size == (3, 3) and layer.stride == (2, 2) and layer.padding == (1, 1)
    assert layer.dilation == (1, 1) and layer.transposed is False and layer.output_padding == (0, 0)
    assert layer.bias is None


def test_layer_imports_without_openmmlab(tmp_path):
    """The maths is plain PyTorch: importing it must not pull in mmcv, mmdet or mmengine."""
    import subprocess
    import sys
    code = (
        'import sys, importlib.abc\n'
        'class Block(importlib.abc.MetaPathFinder):\n'
        '    def find_spec(self, name, path, target=None):\n'
        '        if name.split(".")[0] in ("mmcv", "mmdet", "mmengine"):\n'
        '            raise ImportError("blocked " + name)\n'
        'sys.meta_path.insert(0, Block())\n'
        'import torch\n'
        'from odconv_mmdet.layers.odconv import ODConv2d\n'
        'print(tuple(ODConv2d(4, 8, 3, padding=1)(torch.randn(2, 4, 6, 6)).shape))\n'
        'assert not [m for m in sys.modules if m.split(".")[0] in ("mmcv", "mmdet", "mmengine")]\n'
    )
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '(2, 8, 6, 6)'


@pytest.mark.parametrize('case', ['3x3_K4', '1x1_K1_static_path', 'depthwise_K4', '1x1_K4_stride2'])
def test_layer_is_torchscript_scriptable(case):
    layer = randomize(build(case))
    scripted = torch.jit.script(layer)
    for training, shape in ((False, (3, 9, 9)), (True, (1, 9, 9)), (False, (2, 2, 2))):
        layer.train(training)
        scripted.train(training)
        x = torch.randn(shape[0], CASES[case][0], *shape[1:])
        torch.testing.assert_close(scripted(x), layer(x))
    scripted.attention.temperature = 3.0
    layer.update_temperature(3.0)
    layer.eval()
    scripted.eval()
    x = torch.randn(2, CASES[case][0], 9, 9)
    torch.testing.assert_close(scripted(x), layer(x))
