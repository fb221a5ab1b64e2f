"""The formulations ODConv2d chooses between: same numbers and gradients, and the choice."""
import warnings

import pytest
import torch

from odconv_mmdet.layers import odconv as odconv_module
from odconv_mmdet.layers.odconv import ODConv2d
from odconv_mmdet.testing.official import reference_odconv
from .test_odconv_layer import randomize

PATHS = ['per_sample', 'batched_matmul', 'shared_matmul', 'auto']


def paths_for(groups):
    # the shared matmul computes ungrouped convs only (forcing it on a grouped one is an error)
    return [p for p in PATHS if groups == 1 or p != 'shared_matmul']

# (in, out, k, stride, padding, groups, K, H, W): deep and low-resolution, wide and high-resolution,
# grouped and depthwise convs.
SHAPES = {
    'deep_3x3_K4': (64, 48, 3, 1, 1, 1, 4, 3, 4),
    'deep_1x1_K4': (64, 80, 1, 1, 0, 1, 4, 3, 3),
    'deep_1x1_K1_stride2': (64, 32, 1, 2, 0, 1, 1, 5, 6),
    'wide_3x3_K4': (4, 6, 3, 1, 1, 1, 4, 12, 11),
    'wide_3x3_K1_stride2': (4, 6, 3, 2, 1, 1, 1, 12, 11),
    'wide_1x1_K1': (4, 8, 1, 1, 0, 1, 1, 9, 9),
    'grouped_3x3_K2': (8, 16, 3, 1, 1, 4, 2, 7, 6),
    'depthwise_5x5_K4': (8, 8, 5, 1, 2, 8, 4, 8, 7),
}


def build(name):
    cin, cout, k, s, p, g, kn, _, _ = SHAPES[name]
    torch.manual_seed(0)
    return randomize(ODConv2d(cin, cout, k, stride=s, padding=p, groups=g, kernel_num=kn)).double()


def run(layer, x, path):
    layer.conv_path = path
    layer.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    out = layer(x)
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    (out * weights).sum().backward()
    return [out.detach(), x.grad] + [p.grad for p in layer.parameters()]


@pytest.mark.parametrize('name', sorted(SHAPES))
@pytest.mark.parametrize('batch', [1, 3])
@pytest.mark.parametrize('training', [True, False], ids=['train', 'eval'])
def test_every_formulation_gives_the_reference_numbers_and_the_same_gradients(name, batch, training):
    cin, cout, k, s, p, g, kn, h, w = SHAPES[name]
    layer = build(name).train(training)
    layer.update_temperature(1.7)
    x = torch.randn(batch, cin, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    sd = {n: t.clone() for n, t in layer.state_dict().items()}
    expected = reference_odconv(sd, x, kernel_size=k, stride=s, padding=p, dilation=1, groups=g,
                                kernel_num=kn, temperature=1.7, training=training)
    results = {}
    for path in paths_for(g):
        layer.load_state_dict(sd)  # a training forward updates the BN statistics
        results[path] = run(layer, x, path)
        torch.testing.assert_close(results[path][0], expected, rtol=1e-9, atol=1e-10)
    for path in paths_for(g)[1:]:
        for got, want in zip(results[path][1:], results['per_sample'][1:]):
            torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize('name, path', [(name, path) for name in ['deep_3x3_K4', 'wide_1x1_K1', 'grouped_3x3_K2']
                                         for path in paths_for(SHAPES[name][5])])
def test_every_formulation_has_second_order_and_torch_func_gradients(name, path):
    cin, cout, k, s, p, g, kn, h, w = SHAPES[name]
    layer = build(name).eval()
    layer.conv_path = path
    x = torch.randn(2, cin, h, w, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(layer(x).square().sum(), x, create_graph=True)
    (second,) = torch.autograd.grad(grad.square().sum(), x)
    layer.conv_path = 'per_sample'
    (grad_ref,) = torch.autograd.grad(layer(x).square().sum(), x, create_graph=True)
    (second_ref,) = torch.autograd.grad(grad_ref.square().sum(), x)
    torch.testing.assert_close(second, second_ref, rtol=1e-8, atol=1e-10)
    layer.conv_path = path
    params = {n: t.detach() for n, t in layer.named_parameters()}
    func_grad = torch.func.grad(lambda ps: torch.func.functional_call(layer, ps, (x.detach(),)).square().sum())(params)
    layer.zero_grad()
    layer(x.detach()).square().sum().backward()
    for n, t in layer.named_parameters():
        torch.testing.assert_close(func_grad[n], t.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('kernel_num, k, batch', [(4, 3, 3), (1, 1, 3), (1, 3, 2), (4, 1, 1)])
def test_off_the_cpu_the_layer_runs_the_official_convs(monkeypatch, kernel_num, k, batch):
    # A meta tensor stands for a GPU one: per-sample kernels and the batch folded into the groups,
    # except K == 1 1x1, the official shortcut: one conv with the shared static kernel.
    calls = []
    conv2d = odconv_module.F.conv2d
    monkeypatch.setattr(odconv_module.F, 'conv2d',
                        lambda x, w, *a: calls.append((tuple(x.shape), tuple(w.shape), a[-1])) or conv2d(x, w, *a))
    layer = ODConv2d(8, 16, k, padding=k // 2, groups=2, kernel_num=kernel_num).to('meta')
    out = layer(torch.empty(batch, 8, 5, 6, device='meta'))
    assert out.shape == (batch, 16, 5, 6) and out.device.type == 'meta'
    if kernel_num == 1 and k == 1:
        assert calls == [((batch, 8, 5, 6), (16, 4, 1, 1), 2)]
    else:
        assert calls == [((1, batch * 8, 5, 6), (batch * 16, 4, k, k), 2 * batch)]


def test_auto_choice_per_input():
    deep = ODConv2d(512, 512, 3, padding=1, kernel_num=4)
    assert deep._choose_path(torch.empty(1, 512, 10, 17)) == 'per_sample'  # batch 1: one plain conv
    assert deep._choose_path(torch.empty(8, 512, 10, 17)) == 'batched_matmul'  # L=170 <= C/3
    assert deep._choose_path(torch.empty(8, 512, 4, 4)) == 'shared_matmul'  # L * K = 64 < out
    high_res = ODConv2d(64, 64, 3, padding=1, kernel_num=4)
    assert high_res._choose_path(torch.empty(8, 64, 80, 136)) == 'per_sample'
    pointwise = ODConv2d(64, 256, 1, kernel_num=1)
    assert pointwise._choose_path(torch.empty(2, 64, 80, 136)) == 'batched_matmul'
    # a kernel the batch shares (K = 1, 1x1) at low resolution: one matmul over all positions
    assert pointwise._choose_path(torch.empty(2, 64, 2, 2)) == 'batched_matmul'
    assert pointwise._choose_path(torch.empty(1, 64, 80, 136)) == 'per_sample'  # batch 1: one plain conv
    spatial_only = ODConv2d(512, 512, 3, padding=1, kernel_num=1)
    assert spatial_only._choose_path(torch.empty(1, 512, 10, 17)) == 'per_sample'  # batch 1
    assert spatial_only._choose_path(torch.empty(8, 512, 14, 14)) == 'shared_matmul'  # L * K < out
    assert spatial_only._choose_path(torch.empty(8, 512, 28, 28)) == 'per_sample'  # L > C/3, L * K > out
    traced_paths = []
    original = ODConv2d._choose_path

    def spy(self, x):
        traced_paths.append(original(self, x))
        return traced_paths[-1]
    ODConv2d._choose_path = spy
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', torch.jit.TracerWarning)  # shape-based choices, intended
            torch.jit.trace(high_res.eval(), torch.randn(2, 64, 8, 8), check_trace=False)
    finally:
        ODConv2d._choose_path = original
    assert set(traced_paths) == {'batched_matmul'}  # the batch-independent graph


def test_unknown_conv_path_is_named_in_the_error():
    layer = ODConv2d(8, 8, 3, padding=1)
    layer.conv_path = 'fastest'
    with pytest.raises(ValueError, match="conv_path must be one of .*got 'fastest'"):
        layer(torch.randn(2, 8, 5, 5))


@pytest.mark.parametrize('path', PATHS)
def test_every_formulation_trains_under_autocast(path):
    # bfloat16 autocast on the CPU, as --amp does on a GPU with float16.
    layer = ODConv2d(64, 64, 3, padding=1, kernel_num=4)
    layer.conv_path = path
    x = torch.randn(3, 64, 4, 4, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = layer(x)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(layer.weight.grad).all()
    with torch.no_grad():
        reference = layer(x)
    assert ((out.float() - reference).norm() / reference.norm()) < 0.05


# (in, out, k, K, groups, input shape) -> the CPU's choice, and a traced graph's on every device;
# every other call off the CPU is 'per_sample'.
POLICY_CASES = [
    ((512, 512, 3, 4, 1), (8, 512, 10, 17), 'batched_matmul', 'batched_matmul'),  # L = 170 <= C / 3
    ((128, 128, 3, 4, 1), (8, 128, 8, 8), 'per_sample', 'batched_matmul'),  # L = C / 2 (the main job's stage 3)
    ((512, 512, 3, 4, 1), (8, 512, 4, 4), 'shared_matmul', 'batched_matmul'),  # L * K < out: no per-sample kernel
    ((512, 512, 3, 4, 1), (16, 512, 7, 7), 'shared_matmul', 'batched_matmul'),  # ResNet-50's stage 4 at 224x224
    ((256, 256, 3, 4, 1), (16, 256, 14, 14), 'per_sample', 'batched_matmul'),  # its stage 3: L * K > out
    ((256, 256, 3, 1, 1), (16, 256, 14, 14), 'shared_matmul', 'batched_matmul'),  # ... L < out with K = 1
    ((64, 64, 3, 4, 1), (64, 64, 8, 8), 'per_sample', 'batched_matmul'),  # a half-width R18's stage 2 at 64x64
    ((64, 64, 3, 1, 1), (64, 64, 8, 8), 'per_sample', 'batched_matmul'),  # ... with K = 1: L * K = out
    ((128, 128, 3, 4, 1), (64, 128, 4, 4), 'shared_matmul', 'batched_matmul'),  # ... its stage 3
    ((2048, 512, 1, 4, 1), (16, 2048, 7, 7), 'batched_matmul', 'batched_matmul'),  # 1x1: never shared
    ((512, 512, 3, 4, 1), (1, 512, 4, 4), 'per_sample', 'batched_matmul'),  # batch 1, K > 1: one plain conv
    ((512, 512, 3, 1, 1), (1, 512, 10, 17), 'per_sample', 'batched_matmul'),  # K == 1, batch 1
    ((64, 64, 3, 4, 1), (8, 64, 80, 136), 'per_sample', 'batched_matmul'),  # high resolution
    ((64, 256, 1, 4, 1), (2, 64, 80, 136), 'batched_matmul', 'batched_matmul'),  # 1x1
    ((64, 256, 1, 1, 1), (1, 64, 80, 136), 'per_sample', 'per_sample'),  # 1x1, K = 1, batch 1
    ((2048, 512, 1, 1, 1), (8, 2048, 2, 4), 'batched_matmul', 'per_sample'),  # 1x1, K = 1
    ((1024, 256, 1, 4, 1), (8, 1024, 9, 9), 'batched_matmul', 'batched_matmul'),  # 1x1, K = 4, L > C / 16
    ((512, 512, 3, 4, 1), (2, 512, 20, 34), 'per_sample', 'batched_matmul'),  # 3x3, L > C / 2
    ((256, 256, 3, 4, 4), (8, 256, 4, 4), 'per_sample', 'batched_matmul'),  # grouped
]


@pytest.mark.parametrize('shape, x_shape, cpu_choice, traced_choice', POLICY_CASES)
def test_policy_decisions_depend_on_the_device_type(shape, x_shape, cpu_choice, traced_choice):
    from odconv_mmdet.layers.conv_path_policy import choose_conv_path
    cin, cout, k, kernel_num, groups = shape
    layer = ODConv2d(cin, cout, k, padding=k // 2, kernel_num=kernel_num, groups=groups)
    assert layer._choose_path(torch.empty(x_shape)) == cpu_choice
    # the layer asks the policy with its input's device type: a meta tensor stands for a GPU one
    assert layer._choose_path(torch.empty(x_shape, device='meta')) == 'per_sample'
    args = (x_shape[0], cin, cout, k, kernel_num, groups, x_shape[2] * x_shape[3])
    for device_type in ('cuda', 'xpu', 'mps'):
        assert choose_conv_path(device_type, False, *args) == 'per_sample'
        assert choose_conv_path(device_type, True, *args) == traced_choice
    assert choose_conv_path('cpu', False, *args) == cpu_choice
    assert choose_conv_path('cpu', True, *args) == traced_choice


# (device, traced, batch, kernel numel, one sample's input numel, its output numel, shared kernel)
# -> (channel attention folded into the kernels, filter attention folded)
FOLD_CASES = [
    (('cpu', False, 8, 9216, 32768, 32768, False), (True, True)),  # small kernels, large maps
    (('cpu', False, 8, 147456, 8192, 8192, False), (False, False)),  # deep layers at low resolution
    (('cpu', False, 8, 18432, 32768, 16384, False), (True, False)),  # a stride-2 conv
    (('cpu', False, 4, 4096, 2048, 8192, True), (False, False)),  # a shared 1x1 kernel stays one conv
    (('cpu', False, 1, 4096, 2048, 8192, True), (False, True)),  # ... unless the batch is one sample
    (('cpu', True, 8, 9216, 32768, 32768, False), (False, False)),  # traced
    (('cuda', False, 8, 9216, 32768, 32768, False), (False, False)),  # off the CPU: the official convs
]


@pytest.mark.parametrize('args, folds', FOLD_CASES)
def test_policy_folds_attentions_into_small_kernels_on_the_cpu_only(args, folds):
    from odconv_mmdet.layers.conv_path_policy import folded_attentions
    assert folded_attentions(*args) == folds


# (in, out, k, stride, padding, dilation, K, H, W): what the SHAPES above leave out of the shared
# matmul's own im2col (shared_matmul.py): dilation, no padding, a 5x5 kernel, uneven strides'
# remainders, one input and one output channel.
SHARED_MATMUL_SHAPES = [
    (6, 10, 3, 1, 2, 2, 4, 9, 7),
    (6, 10, 3, 2, 0, 1, 3, 10, 9),
    (5, 7, 5, 3, 1, 2, 2, 13, 12),
    (1, 1, 3, 1, 1, 1, 2, 5, 4),
    (8, 4, 1, 2, 0, 1, 4, 7, 6),
]


@pytest.mark.parametrize('cin, cout, k, s, p, d, kn, h, w', SHARED_MATMUL_SHAPES)
def test_shared_matmul_gives_the_reference_numbers_and_exact_gradients(cin, cout, k, s, p, d, kn, h, w):
    torch.manual_seed(0)
    layer = randomize(ODConv2d(cin, cout, k, stride=s, padding=p, dilation=d, kernel_num=kn, bias=True,
                               conv_path='shared_matmul')).double().eval()
    x = torch.randn(3, cin, h, w, dtype=torch.float64, requires_grad=True)
    expected = reference_odconv(layer.state_dict(), x, kernel_size=k, stride=s, padding=p, dilation=d,
                                kernel_num=kn, bias=layer.bias)
    torch.testing.assert_close(layer(x), expected, rtol=1e-10, atol=1e-12)
    # numerical against analytical derivatives, first and second order (the checks perturb these
    # tensors in place, and the layer reads them)
    tensors = (x, layer.weight, layer.bias, layer.attention.fc.weight, layer.attention.channel_fc.weight)
    assert torch.autograd.gradcheck(lambda *_: layer(x), tensors, fast_mode=True)
    assert torch.autograd.gradgradcheck(lambda *_: layer(x), tensors, fast_mode=True)


def test_shared_matmul_scripts_and_keeps_channels_last():
    torch.manual_seed(0)
    layer = randomize(ODConv2d(16, 24, 3, padding=1, kernel_num=4, conv_path='shared_matmul')).eval()
    scripted = torch.jit.script(layer)  # (a copy of conv_path goes into the script)
    x = torch.randn(4, 16, 5, 6)
    layer.conv_path = 'per_sample'
    expected = layer(x)
    torch.testing.assert_close(scripted(x), expected, rtol=1e-5, atol=1e-5)
    # NCHW in, NCHW out (the matmul computes channels-last); channels_last in, channels_last out
    assert scripted(x).is_contiguous()
    out_last = scripted(x.to(memory_format=torch.channels_last))
    assert out_last.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out_last, expected, rtol=1e-5, atol=1e-5)
