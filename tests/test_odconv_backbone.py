"""ODConv in stock mmdet backbones with their static weights: ODConvBackbone, inflation on load."""
import pytest
import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmengine.logging import MMLogger

import odconv_mmdet  # noqa: F401
from odconv_mmdet.layers.odconv import ODConv2d, odconv_layers, set_temperature

TINY_HRNET = dict(
    stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK', num_blocks=(1,), num_channels=(16,)),
    stage2=dict(num_modules=1, num_branches=2, block='BASIC', num_blocks=(1, 1), num_channels=(8, 16)),
    stage3=dict(num_modules=1, num_branches=3, block='BASIC', num_blocks=(1, 1, 1), num_channels=(8, 16, 32)),
    stage4=dict(num_modules=1, num_branches=4, block='BASIC', num_blocks=(1, 1, 1, 1), num_channels=(8, 16, 32, 64)))

# (static backbone config, its image-stem convs, number of convs the default rule converts)
STOCK_BACKBONES = {
    'ResNet': (dict(type='ResNet', depth=18), ['conv1'], 16),
    'ResNeXt': (dict(type='ResNeXt', depth=50, groups=8, base_width=4), ['conv1'], 48),
    'Res2Net': (dict(type='Res2Net', depth=50, scales=4, base_width=8), ['stem.0', 'stem.3', 'stem.6'], 80),
    'RegNet': (dict(type='RegNet', arch='regnetx_400mf'), ['conv1'], 66),
    'HRNet': (dict(type='HRNet', extra=TINY_HRNET), ['conv1', 'conv2'], 21),
    'MobileNetV2': (dict(type='MobileNetV2', widen_factor=0.5, out_indices=(2, 4, 6)), ['conv1.conv'], 50),
    'CSPNeXt': (dict(type='CSPNeXt', deepen_factor=0.167, widen_factor=0.375),
                ['stem.0.conv', 'stem.1.conv', 'stem.2.conv'], 12),
}


def randomize_norms(model, seed=0):
    """Non-trivial BatchNorm statistics and affine parameters, as a trained checkpoint has."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))
            m.weight.data.copy_(1 + torch.randn(m.num_features, generator=gen) * 0.2)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.2)


def static_checkpoint(cfg, path, seed=0):
    torch.manual_seed(seed)
    static = MODELS.build(cfg)
    randomize_norms(static, seed)
    static.eval()
    torch.save({'state_dict': static.state_dict(), 'meta': {}}, path)
    return static


def assert_same_features(model, static, x):
    model.eval()
    with torch.no_grad():
        ours, ref = model(x), static(x)
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def assert_attention_learns(model, x):
    model.train()
    set_temperature(model, 1.0)
    sum(o.square().mean() for o in model(x)).backward()
    for layer in odconv_layers(model):
        att = layer.attention
        heads = [h for h in (att.channel_fc, att.filter_fc, att.spatial_fc) if h is not None]
        assert all(h.weight.grad is not None and h.weight.grad.abs().sum() > 0 for h in heads)
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('name', list(STOCK_BACKBONES))
def test_stock_backbone_keeps_its_static_weights(name, tmp_path):
    cfg, stems, n_converted = STOCK_BACKBONES[name]
    static = static_checkpoint(cfg, tmp_path / 'static.pth')
    model = MODELS.build(dict(type='ODConvBackbone', kernel_num=4, backbone=dict(
        cfg, init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'static.pth')))))
    model.init_weights()
    assert len(odconv_layers(model)) == n_converted
    for stem in stems:
        assert type(model.backbone.get_submodule(stem)) is nn.Conv2d, stem
    x = torch.randn(2, 3, 64, 64)
    for temperature in (1e4, 1.0, 0.1):  # an inflated layer is its static conv at any temperature
        set_temperature(model, temperature)
        assert_same_features(model, static, x)
    assert_attention_learns(model, x)


def test_conv_cfg_odconv_in_resnext_loads_a_static_pretrained_checkpoint(tmp_path):
    cfg = dict(type='ResNeXt', depth=50, groups=8, base_width=4)
    static = static_checkpoint(cfg, tmp_path / 'static.pth')
    model = MODELS.build(dict(cfg, conv_cfg=dict(type='ODConv', kernel_num=4),
                              init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'static.pth'))))
    model.init_weights()
    assert len(odconv_layers(model)) == 53  # conv_cfg reaches the stem and the shortcuts too
    x = torch.randn(2, 3, 64, 64)
    for temperature in (1e4, 1.0):
        set_temperature(model, temperature)
        assert_same_features(model, static, x)
    assert_attention_learns(model, x)


def test_inflation_reproduces_a_static_conv_layer_exactly():
    torch.manual_seed(0)
    for cin, cout, k, groups in [(8, 16, 3, 1), (16, 16, 3, 16), (8, 8, 1, 1), (8, 16, 3, 2)]:
        static = nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups, bias=True)
        layer = ODConv2d(cin, cout, k, padding=k // 2, groups=groups, bias=True, kernel_num=3)
        layer.load_state_dict(static.state_dict(), strict=True)
        assert layer.inflated_on_load
        assert torch.all(layer.attention.channel_fc.weight == 0)
        assert layer.attention.kernel_fc.weight.abs().sum() > 0  # kept: breaks the K kernels' symmetry
        x = torch.randn(3, cin, 9, 9, dtype=torch.float64)
        layer.double()
        static.double()
        for temperature in (1e6, 1.0, 0.01):
            layer.update_temperature(temperature)
            torch.testing.assert_close(layer(x), static(x), rtol=1e-12, atol=1e-12)


def test_inflated_kernels_diverge_when_trained():
    torch.manual_seed(0)
    static = nn.Conv2d(8, 8, 3, padding=1)
    layer = ODConv2d(8, 8, 3, padding=1, bias=True, kernel_num=4)
    layer.load_state_dict(static.state_dict())
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        layer(torch.randn(4, 8, 6, 6)).square().mean().backward()
        optimizer.step()
    w = layer.weight.detach()
    assert (w[0] - w[1]).abs().max() > 1e-6


def test_an_odconv_checkpoint_or_a_wrong_shape_is_not_inflated():
    layer = ODConv2d(8, 16, 3, kernel_num=2)
    other = ODConv2d(8, 16, 3, kernel_num=2)
    layer.load_state_dict(other.state_dict())
    assert not layer.inflated_on_load and torch.equal(layer.weight, other.weight)
    with pytest.raises(RuntimeError, match='size mismatch for weight'):
        layer.load_state_dict({'weight': torch.zeros(16, 4, 3, 3)}, strict=False)


def test_frozen_stages_norm_eval_and_out_indices_are_the_inner_backbones():
    model = MODELS.build(dict(type='ODConvBackbone', kernel_num=2, backbone=dict(
        type='ResNet', depth=18, frozen_stages=1, norm_eval=True, out_indices=(1, 3))))
    model.train()
    stage1 = odconv_layers(model.backbone.layer1)
    assert stage1 and all(not p.requires_grad for m in stage1 for p in m.parameters())
    assert all(not m.training for m in stage1)
    stage2 = odconv_layers(model.backbone.layer2)
    assert all(p.requires_grad for m in stage2 for p in m.parameters())
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(not m.training for m in bns)  # norm_eval, attention norms included
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [128, 512]


def test_include_and_exclude_patterns():
    base = dict(type='ResNet', depth=18)
    only = MODELS.build(dict(type='ODConvBackbone', backbone=base, include=['layer4.*.conv2', 'conv1']))
    assert sorted(n for n, m in only.backbone.named_modules() if isinstance(m, ODConv2d)) == [
        'conv1', 'layer4.0.conv2', 'layer4.1.conv2']
    fewer = MODELS.build(dict(type='ODConvBackbone', backbone=base, exclude=['layer1.*']))
    assert len(odconv_layers(fewer)) == 12 and not odconv_layers(fewer.backbone.layer1)
    with pytest.raises(ValueError, match=r"include patterns \['layer9\.\*'\] match no conv"):
        MODELS.build(dict(type='ODConvBackbone', backbone=base, include=['layer9.*']))
    with pytest.raises(TypeError, match='exclude must be a list'):
        MODELS.build(dict(type='ODConvBackbone', backbone=base, exclude='layer1.*'))


def test_a_whole_static_detector_checkpoint_loads_with_one_log_line(tmp_path):
    """load_from of a static detector: keys ``backbone.layer1...`` reach the wrapped backbone."""
    cfg = dict(type='ResNet', depth=18)
    static = static_checkpoint(cfg, tmp_path / 'static.pth')
    detector_state = {'backbone.' + k: v for k, v in static.state_dict().items()}
    detector_state['neck.conv.weight'] = torch.randn(4, 512, 1, 1)

    class Detector(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = MODELS.build(dict(type='ODConvBackbone', kernel_num=4, backbone=cfg))
            self.neck = nn.Module()
            self.neck.conv = nn.Conv2d(512, 4, 1, bias=False)

    logger = MMLogger.get_instance('test_inflation_log', log_file=str(tmp_path / 'log.txt'))
    detector = Detector()
    detector.load_state_dict(detector_state, strict=True)
    for handler in logger.handlers:
        handler.flush()
    lines = [line for line in (tmp_path / 'log.txt').read_text().splitlines() if 'inflated' in line]
    assert len(lines) == 1 and 'inflated static conv weights into 16 of 16 ODConv layers' in lines[0]
    assert_same_features(detector.backbone, static, torch.randn(1, 3, 64, 64))
    # its own checkpoint (nested keys) loads back as it is, inflating nothing
    again = Detector()
    again.load_state_dict(detector.state_dict(), strict=True)
    assert not any(m.inflated_on_load for m in odconv_layers(again))
