"""The formulations ODConv2d chooses between: same numbers and gradients, and the choice."""
import warnings

import pytest
import torch

import torch.nn.functional as F

import odconv_mmdet.layers.mixed_kernel_conv as mixed
from odconv_mmdet.layers.mixed_kernel_conv import MixedKernelConv
from odconv_mmdet.layers.tap_columns import ConvGeometry
from odconv_mmdet.layers.odconv import ODConv2d
from odconv_mmdet.testing.reference import reference_odconv
from .test_odconv_layer import randomize

PATHS = ['per_sample', 'batched_matmul', 'expanded', 'auto']

# (in, out, k, stride, padding, groups, K, H, W): small spatial sizes with many channels make
# the kernels outweigh the activations (no attention folded, memory-lean matmul in training);
# large spatial sizes with few channels fold the channel and filter attentions into the kernels.
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
    for path in PATHS:
        layer.load_state_dict(sd)  # a training forward updates the BN statistics
        results[path] = run(layer, x, path)
        torch.testing.assert_close(results[path][0], expected, rtol=1e-9, atol=1e-10)
    for path in PATHS[1:]:
        for got, want in zip(results[path][1:], results['per_sample'][1:]):
            torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-10)


# (k, stride, padding, dilation, groups, H, W)
LEAN_GEOMETRIES = {
    '3x3': (3, 1, 1, 1, 2, 4, 3),
    '3x3_stride2_dilated': (3, 2, 2, 2, 1, 7, 6),
    '1x1': (1, 1, 0, 1, 2, 3, 2),
    '1x1_stride2': (1, 2, 0, 1, 1, 5, 4),
}


@pytest.mark.parametrize('batch', [1, 5])
@pytest.mark.parametrize('geometry_name', list(LEAN_GEOMETRIES))
def test_memory_lean_conv_gradcheck_across_blocks(monkeypatch, batch, geometry_name):
    # Tiny blocks: at batch 5 every loop crosses block boundaries (output channels one at a
    # time; input columns a few at a time). Batch 1 covers the outer-product weight gradient.
    k, stride, padding, dilation, groups, height, width = LEAN_GEOMETRIES[geometry_name]
    taps = k * k
    monkeypatch.setattr(mixed, 'CHUNK_FLOATS', 100 if taps > 1 else 20)
    gen = torch.Generator().manual_seed(0)
    in_channels, out_channels, num_kernels = 3 * groups, 2 * groups, 3
    x = torch.randn(batch, in_channels, height, width, dtype=torch.float64, generator=gen, requires_grad=True)
    weight = torch.randn(num_kernels, out_channels, 3, taps, dtype=torch.float64, generator=gen,
                         requires_grad=True)
    kernel = torch.rand(batch, num_kernels, dtype=torch.float64, generator=gen, requires_grad=True)
    spatial = (torch.rand(batch, taps, dtype=torch.float64, generator=gen, requires_grad=True)
               if taps > 1 else None)
    if batch == 5 and taps > 1:
        assert mixed._block(2, batch * 3 * taps) == 1
        assert mixed._block(3 * taps, batch * 2) == 10
    # against F.conv2d, one sample at a time with its own kernel
    kernels = torch.einsum('bk,kocT->bocT', kernel, weight)
    if spatial is not None:
        kernels = kernels * spatial.view(batch, 1, 1, taps)
    kernels = kernels.view(batch, out_channels, 3, k, k)
    expected = torch.cat([F.conv2d(x[b:b + 1], kernels[b], None, stride, padding, dilation, groups)
                          for b in range(batch)])
    geometry = ConvGeometry((k, k), (stride, stride), (padding, padding), (dilation, dilation))
    out = MixedKernelConv.apply(x, weight, kernel, spatial, geometry, groups)
    torch.testing.assert_close(out.view_as(expected), expected, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda *t: MixedKernelConv.apply(*t, geometry, groups),
                                    (x, weight, kernel, spatial))


def test_memory_lean_matmul_is_used_only_where_it_pays(monkeypatch):
    calls = []
    real = mixed.MixedKernelConv.apply
    monkeypatch.setattr(mixed.MixedKernelConv, 'apply', lambda *a: calls.append(1) or real(*a))
    layer = ODConv2d(64, 64, 3, padding=1, kernel_num=4)
    layer(torch.randn(2, 64, 4, 4)).sum().backward()  # kernels 36k floats > activations 1k
    assert calls == [1]
    with torch.no_grad():
        layer(torch.randn(2, 64, 4, 4))  # inference too: kernels built block by block
    assert calls == [1, 1]
    layer(torch.randn(2, 64, 40, 40)).sum().backward()  # activations dominate: plain path
    with torch.autocast('cpu', dtype=torch.bfloat16):
        layer(torch.randn(2, 64, 4, 4))  # autocast casts only built-in ops: plain path
    assert calls == [1, 1]


@pytest.mark.parametrize('batch', [1, 3])
def test_kernel_mixing_gradients(batch):
    gen = torch.Generator().manual_seed(0)
    kernel = torch.rand(batch, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    weight = torch.randn(4, 10, dtype=torch.float64, generator=gen, requires_grad=True)
    torch.testing.assert_close(mixed.MixKernels.apply(kernel, weight), kernel @ weight, rtol=0, atol=0)
    assert torch.autograd.gradcheck(mixed.MixKernels.apply, (kernel, weight))


def test_auto_choice_per_input():
    deep = ODConv2d(512, 512, 3, padding=1, kernel_num=4)
    assert deep._choose_path(torch.empty(1, 512, 10, 17)) == 'per_sample'  # batch 1: one plain conv
    assert deep._choose_path(torch.empty(8, 512, 10, 17)) == 'batched_matmul'  # L=170 <= C/3
    assert deep._choose_path(torch.empty(8, 512, 4, 4)) == 'expanded'  # L*16 <= C
    high_res = ODConv2d(64, 64, 3, padding=1, kernel_num=4)
    assert high_res._choose_path(torch.empty(8, 64, 80, 136)) == 'per_sample'
    pointwise = ODConv2d(64, 256, 1, kernel_num=1)
    assert pointwise._choose_path(torch.empty(2, 64, 80, 136)) == 'batched_matmul'
    # a kernel the batch shares (K = 1, 1x1) at low resolution: one matmul over all positions
    assert pointwise._choose_path(torch.empty(2, 64, 2, 2)) == 'expanded'
    assert pointwise._choose_path(torch.empty(1, 64, 80, 136)) == 'batched_matmul'  # 1x1 at batch 1 too
    spatial_only = ODConv2d(512, 512, 3, padding=1, kernel_num=1)
    assert spatial_only._choose_path(torch.empty(1, 512, 10, 17)) == 'expanded'  # L <= C/3, K = 1
    assert spatial_only._choose_path(torch.empty(8, 512, 14, 14)) == 'per_sample'  # L > C/3
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
    layer = ODConv2d(64, 64, 3, padding=1, kernel_num=4)  # big kernels, small input: lean matmul
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


# (in, out, k, K, groups, input shape) -> CPU choice; every case on 'cuda' is 'per_sample'
# except traced graphs.
POLICY_CASES = [
    ((512, 512, 3, 4, 1), (8, 512, 10, 17), 'batched_matmul'),  # L = 170 <= C / 3
    ((128, 128, 3, 4, 1), (8, 128, 8, 8), 'per_sample'),  # L = C / 2 (the main job's stage 3)
    ((512, 512, 3, 4, 1), (8, 512, 4, 4), 'expanded'),  # L * 16 <= C
    ((512, 512, 3, 4, 1), (1, 512, 4, 4), 'per_sample'),  # batch 1, K > 1: one plain conv
    ((512, 512, 3, 1, 1), (1, 512, 10, 17), 'expanded'),  # K == 1: L <= C / 3
    ((64, 64, 3, 4, 1), (8, 64, 80, 136), 'per_sample'),  # high resolution
    ((64, 256, 1, 4, 1), (2, 64, 80, 136), 'batched_matmul'),  # 1x1
    ((64, 256, 1, 1, 1), (1, 64, 80, 136), 'batched_matmul'),  # 1x1, K = 1, batch 1
    ((2048, 512, 1, 1, 1), (8, 2048, 2, 4), 'expanded'),  # 1x1, K = 1, L <= C / 3: one matmul
    ((1024, 256, 1, 4, 1), (8, 1024, 9, 9), 'batched_matmul'),  # 1x1, K = 4, L > C / 16
    ((512, 512, 3, 4, 1), (2, 512, 20, 34), 'per_sample'),  # 3x3, L > C / 2
    ((256, 256, 3, 4, 4), (8, 256, 4, 4), 'per_sample'),  # grouped
]


@pytest.mark.parametrize('shape, x_shape, cpu_choice', POLICY_CASES)
def test_policy_decisions_depend_on_the_device_type(shape, x_shape, cpu_choice):
    from odconv_mmdet.layers.conv_path_policy import choose_conv_path
    cin, cout, k, kernel_num, groups = shape
    layer = ODConv2d(cin, cout, k, padding=k // 2, kernel_num=kernel_num, groups=groups)
    assert layer._choose_path(torch.empty(x_shape)) == cpu_choice
    # the layer asks the policy with its input's device type: a meta tensor stands for a GPU one
    assert layer._choose_path(torch.empty(x_shape, device='meta')) == 'per_sample'
    args = (x_shape[0], cin, k, kernel_num, groups, x_shape[2] * x_shape[3])
    for device_type in ('cuda', 'xpu', 'mps'):
        assert choose_conv_path(device_type, False, *args) == 'per_sample'
        assert choose_conv_path(device_type, True, *args) == 'batched_matmul'  # traced
    assert choose_conv_path('cpu', False, *args) == cpu_choice
    assert choose_conv_path('cpu', True, *args) == 'batched_matmul'


def test_policy_custom_autograd_functions_only_on_the_cpu_without_autocast():
    from odconv_mmdet.layers.conv_path_policy import use_custom_autograd
    assert use_custom_autograd('cpu', autocast=False)
    assert not use_custom_autograd('cpu', autocast=True)
    assert not use_custom_autograd('cuda', autocast=False)
    assert not use_custom_autograd('cuda', autocast=True)


def test_policy_tap_copies_on_the_cpu_for_wide_enough_outputs(monkeypatch):
    from odconv_mmdet.layers import conv_path_policy as policy
    width = policy.cpu_thresholds().tap_copy_width
    assert policy.columns_by_tap_copies('cpu', False, width)
    assert not policy.columns_by_tap_copies('cpu', False, width - 1)
    assert not policy.columns_by_tap_copies('cpu', True, width)  # autocast
    assert not policy.columns_by_tap_copies('cuda', False, width)
    # the layer asks it per input: its columns' gradients come through TapColumns or F.unfold
    calls = []
    real = policy.columns_by_tap_copies
    monkeypatch.setattr('odconv_mmdet.layers.odconv.columns_by_tap_copies',
                        lambda *a: calls.append(a) or real(*a))
    layer = ODConv2d(4, 4, 3, padding=1, kernel_num=1, conv_path='batched_matmul')
    for out_width in (width - 1, width):
        layer(torch.randn(2, 4, 5, out_width, requires_grad=True)).sum().backward()
    assert calls == [('cpu', False, width - 1), ('cpu', False, width)]


def test_policy_keeps_per_sample_kernels_up_to_batch_k(monkeypatch):
    from odconv_mmdet.layers.conv_path_policy import keep_per_sample_kernels
    assert keep_per_sample_kernels(4, 4) and keep_per_sample_kernels(1, 2)
    assert not keep_per_sample_kernels(5, 4)
    # the lean conv asks it, and gives the same gradients either way
    layer = ODConv2d(32, 32, 3, padding=1, kernel_num=4).double()
    x = torch.randn(3, 32, 3, 3, dtype=torch.float64, requires_grad=True)
    grads, asked = [], []
    for keep in (True, False):
        monkeypatch.setattr(mixed, 'keep_per_sample_kernels', lambda batch, k: asked.append((batch, k)) or keep)
        layer.zero_grad()
        x.grad = None
        layer(x).square().sum().backward()
        grads.append((x.grad, layer.weight.grad.clone()))
    assert asked == [(3, 4), (3, 4)]
    for got, want in zip(*grads):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
