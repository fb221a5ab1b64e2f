"""Inputs that real code hands a conv layer: empty batches, half precision, string paddings,
conv_cfg options, channels_last, SyncBN conversion (second-order gradients: test_conv_paths.py)."""
import copy

import pytest
import torch
import torch.nn as nn

import odconv_mmdet  # noqa: F401
from odconv_mmdet.layers.odconv import ODConv2d, odconv_layers

PATHS = ['auto', 'per_sample', 'batched_matmul', 'shared_matmul']


def _cpu_has_half_matmul():
    try:
        torch.ones(2, 2, dtype=torch.float16) @ torch.ones(2, 2, dtype=torch.float16)
    except RuntimeError:
        return False
    return True


@pytest.mark.parametrize('train', [True, False])
@pytest.mark.parametrize('path, cin, cout, k, groups', [
    (path, *shape) for path in PATHS for shape in [(8, 16, 3, 1), (16, 16, 1, 1), (64, 64, 3, 1), (16, 16, 3, 16)]
    if shape[3] == 1 or path != 'shared_matmul'])  # (the shared matmul computes ungrouped convs only)
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


@pytest.mark.skipif(not _cpu_has_half_matmul(), reason='this torch has no float16 matmul on the CPU '
                    '(nn.Linear fails too); the main CI run covers it')
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
    (dict(conv_path='shared_matmul', groups=4), "conv_path='shared_matmul' needs groups=1, got groups=4"),
])
def test_unsupported_padding_and_paths_fail_at_construction(kwargs, message):
    kwargs = dict(dict(kernel_size=3), **kwargs)
    with pytest.raises(ValueError, match=message):
        ODConv2d(8, 16, **kwargs)


def test_conv_path_can_be_set_from_a_config():
    from mmcv.cnn import build_conv_layer
    layer = build_conv_layer(dict(type='ODConv', kernel_num=2, conv_path='batched_matmul'), 8, 16, 3, padding=1)
    assert layer.conv_path == 'batched_matmul'
    x = torch.randn(3, 8, 4, 4)
    reference = build_conv_layer(dict(type='ODConv', kernel_num=2, conv_path='per_sample'), 8, 16, 3, padding=1)
    reference.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer(x), reference(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('path', PATHS)
@pytest.mark.parametrize('kernel_num, k', [(4, 3), (1, 1), (4, 1), (1, 3)])
def test_channels_last_model_and_input_give_the_same_numbers(path, kernel_num, k):
    torch.manual_seed(0)
    layer = ODConv2d(16, 32, k, padding=k // 2, kernel_num=kernel_num, conv_path=path)
    converted = copy.deepcopy(layer).to(memory_format=torch.channels_last)  # raised for the 5-D weight
    assert converted.weight.shape == layer.weight.shape and converted.weight.is_contiguous()
    x = torch.randn(3, 16, 9, 7)
    x_last = x.to(memory_format=torch.channels_last).requires_grad_(True)
    x = x.requires_grad_(True)
    out, out_last = layer(x), converted(x_last)
    assert out_last.is_contiguous(memory_format=torch.channels_last)  # the format is kept, as nn.Conv2d does
    torch.testing.assert_close(out_last, out, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(out)
    out.backward(grad)
    out_last.backward(grad)
    torch.testing.assert_close(x_last.grad, x.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(converted.weight.grad, layer.weight.grad, rtol=1e-5, atol=1e-5)


def test_channels_last_model_saves_and_loads_the_official_shapes():
    layer = ODConv2d(16, 32, 3, padding=1, kernel_num=4).to(memory_format=torch.channels_last)
    state = layer.state_dict()
    assert state['weight'].shape == (4, 32, 16, 3, 3)
    fresh = ODConv2d(16, 32, 3, padding=1, kernel_num=4).to(memory_format=torch.channels_last)
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.weight, layer.weight)


def test_channels_last_backbone_converts_with_its_gradients():
    from odconv_mmdet.backbones import ODResNet
    net = ODResNet(depth=18, kernel_num=4)
    net(torch.randn(2, 3, 32, 32))[-1].sum().backward()
    net.to(memory_format=torch.channels_last)  # the kernel stacks and their grads convert as 4-D kernels
    for layer in odconv_layers(net):
        assert layer.weight.dim() == 5 and layer.weight.grad.shape == layer.weight.shape
    x = torch.randn(2, 3, 32, 32).to(memory_format=torch.channels_last)
    assert all(f.is_contiguous(memory_format=torch.channels_last) for f in net(x))


def sync_bn_twin(layer):
    return nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(layer))


def test_sync_bn_conversion_syncs_the_attention_norm_and_keeps_batch1_training():
    from odconv_mmdet.layers.odconv import AttentionBatchNorm2d
    torch.manual_seed(0)
    layer = ODConv2d(16, 32, 3, padding=1, kernel_num=4).train()
    with torch.no_grad():
        layer.attention.bn.running_mean.normal_()
        layer.attention.bn.running_var.uniform_(0.5, 2)
    synced = sync_bn_twin(layer)
    assert isinstance(layer.attention.bn, AttentionBatchNorm2d)
    assert type(synced.attention.bn) is nn.SyncBatchNorm  # converted like every other BatchNorm
    # batch 1 in one process: normalised with the running statistics, which stay unchanged
    x = torch.randn(1, 16, 9, 9)
    running = synced.attention.bn.running_mean.clone()
    torch.testing.assert_close(synced(x), layer(x))
    torch.testing.assert_close(synced.attention.bn.running_mean, running)
    torch.testing.assert_close(synced(x), layer.eval()(x))
    # a larger batch: batch statistics, as the per-process norm
    layer.train()
    x = torch.randn(3, 16, 9, 9)
    torch.testing.assert_close(synced(x), layer(x))
    torch.testing.assert_close(synced.attention.bn.running_mean, layer.attention.bn.running_mean)


def test_mmengine_sync_bn_and_a_syncbn_norm_cfg_on_a_backbone_train_at_batch1():
    from mmengine.model import convert_sync_batchnorm

    from odconv_mmdet.backbones import ODResNet
    from odconv_mmdet.layers.odconv import AttentionBatchNorm2d
    # norm_cfg=SyncBN configures the block norms; the attention norm stays per process
    net = ODResNet(depth=18, kernel_num=4, norm_cfg=dict(type='SyncBN'), norm_eval=False)
    net.train()  # (mmdet's ResNet.train returns None)
    assert isinstance(net.bn1, nn.SyncBatchNorm)
    assert all(isinstance(m.attention.bn, AttentionBatchNorm2d) for m in net.modules() if isinstance(m, ODConv2d))
    net(torch.randn(1, 3, 64, 64))[-1].sum().backward()  # (stage 4 at 2x2: its own BN has 4 values)
    # the runner's sync_bn='torch' converts every BatchNorm, the attention's too
    net = convert_sync_batchnorm(ODResNet(depth=18, kernel_num=4, norm_eval=False), implementation='torch')
    net.train()
    assert all(isinstance(m.attention.bn, nn.SyncBatchNorm) for m in net.modules() if isinstance(m, ODConv2d))
    net(torch.randn(1, 3, 64, 64))[-1].sum().backward()  # (stage 4 at 2x2: its own BN has 4 values)
