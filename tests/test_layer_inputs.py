"""Inputs that real code hands a conv layer: empty batches, half precision, string paddings,
conv_cfg options, second-order gradients."""
import pytest
import torch
import torch.nn as nn
from mmcv.cnn import build_conv_layer

import odconv_mmdet  # noqa: F401
from odconv_mmdet.layers.odconv import ODConv2d

PATHS = ['auto', 'per_sample', 'batched_matmul', 'expanded']


@pytest.mark.parametrize('path', PATHS)
@pytest.mark.parametrize('train', [True, False])
@pytest.mark.parametrize('cin, cout, k, groups', [(8, 16, 3, 1), (16, 16, 1, 1), (64, 64, 3, 1), (16, 16, 3, 16)])
def test_an_empty_batch_gives_an_empty_output_tied_to_every_parameter(path, train, cin, cout, k, groups):
    layer = ODConv2d(cin, cout, k, padding=k // 2, groups=groups, kernel_num=4, bias=True, conv_path=path)
    layer.train(train)
    x = torch.randn(0, cin, 7, 5, requires_grad=True)
    out = layer(x)
    assert out.shape == (0, cout, 7, 5)
    out.sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.all(p.grad == 0), name
    if train:
        assert layer.attention.bn.num_batches_tracked.item() == 0  # no statistics from no samples


def test_half_precision_on_a_large_input_does_not_overflow():
    torch.manual_seed(0)
    layer = ODConv2d(8, 16, 3, padding=1, kernel_num=4).eval()
    x = torch.rand(2, 8, 128, 128) * 100  # the per-channel sum, about 8e5, exceeds float16's 65504
    reference = layer(x)
    out = layer.half()(x.half()).float()
    assert torch.isfinite(out).all()
    assert (out - reference).abs().max() <= 0.05 * reference.abs().max()


def test_padding_same_and_valid_match_nn_conv2d():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 9, 7)
    for padding, dilation in (('same', 1), ('same', 2), ('valid', 1)):
        static = nn.Conv2d(8, 16, 3, padding=padding, dilation=dilation)
        layer = ODConv2d(8, 16, 3, padding=padding, dilation=dilation, bias=True, kernel_num=2)
        layer.load_state_dict(static.state_dict())  # inflated: computes exactly the static conv
        torch.testing.assert_close(layer(x), static(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('kwargs, message', [
    (dict(padding='same', stride=2), "padding='same' needs stride 1"),
    (dict(kernel_size=2, padding='same'), 'would pad unevenly'),
    (dict(padding='full'), "padding must be a number, a pair, 'same' or 'valid'"),
    (dict(padding_mode='reflect'), "padding_mode='zeros' only"),
    (dict(conv_path='fastest'), 'conv_path must be one of'),
])
def test_unsupported_padding_and_paths_fail_at_construction(kwargs, message):
    kwargs = dict(dict(kernel_size=3), **kwargs)
    with pytest.raises(ValueError, match=message):
        ODConv2d(8, 16, **kwargs)


def test_conv_path_can_be_set_from_a_config():
    layer = build_conv_layer(dict(type='ODConv', kernel_num=2, conv_path='expanded'), 8, 16, 3, padding=1)
    assert layer.conv_path == 'expanded'
    x = torch.randn(3, 8, 4, 4)
    reference = build_conv_layer(dict(type='ODConv', kernel_num=2, conv_path='per_sample'), 8, 16, 3, padding=1)
    reference.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer(x), reference(x), rtol=1e-5, atol=1e-5)


def test_second_order_gradients_work_where_supported_and_fail_clearly_elsewhere():
    torch.manual_seed(0)
    x = torch.randn(4, 64, 4, 4, dtype=torch.float64, requires_grad=True)
    grads = {}
    for path in ('per_sample', 'expanded'):
        layer = ODConv2d(64, 64, 3, padding=1, kernel_num=4, conv_path=path).double()
        torch.manual_seed(1)
        layer.init_weights()
        g, = torch.autograd.grad(layer(x).square().sum(), x, create_graph=True)
        grads[path], = torch.autograd.grad(g.square().sum(), x)
    torch.testing.assert_close(grads['per_sample'], grads['expanded'])
    layer = ODConv2d(64, 64, 3, padding=1, kernel_num=4, conv_path='batched_matmul').double()
    with pytest.raises(RuntimeError, match='second-order gradients are not supported through the memory-lean'):
        torch.autograd.grad(layer(x).square().sum(), x, create_graph=True)
