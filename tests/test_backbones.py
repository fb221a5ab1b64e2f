"""ODResNet and ODMobileNetV2: topology, shapes, parameter counts, freezing, official weights."""
import pytest
import torch
import torch.nn as nn
from mmdet.models.backbones import ResNet
from mmdet.registry import MODELS
from mmengine.runner.checkpoint import load_checkpoint

import odconv_mmdet  # noqa: F401
from odconv_mmdet.backbones import ODMobileNetV2, ODResNet
from odconv_mmdet.layers.odconv import AttentionBatchNorm2d, ODConv2d
from odconv_mmdet.testing.official_format import official_mobilenet_v2, official_odresnet, official_odresnet_features


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('depth, channels', [(18, [64, 128, 256, 512]), (34, [64, 128, 256, 512]),
                                             (50, [256, 512, 1024, 2048]), (101, [256, 512, 1024, 2048]),
                                             (152, [256, 512, 1024, 2048])])
def test_odresnet_forward_shapes(depth, channels):
    model = MODELS.build(dict(type='ODResNet', depth=depth, kernel_num=2))
    model.eval()  # mmdet's ResNet.train() returns None, so no chaining
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(1, c, 16 // 2 ** i, 24 // 2 ** i) for i, c in enumerate(channels)]


@pytest.mark.parametrize('depth, kernel_num, millions', [(18, 4, 44.39), (50, 1, 26.59), (50, 4, 88.62)])
def test_parameter_counts_match_official_models_without_classifier(depth, kernel_num, millions):
    model = ODResNet(depth=depth, kernel_num=kernel_num)
    assert round(n_params(model) / 1e6, 2) == millions


def test_topology_odconv_only_inside_blocks():
    model = ODResNet(depth=50, kernel_num=4)
    odconvs = {n for n, m in model.named_modules() if isinstance(m, ODConv2d)}
    static = {n for n, m in model.named_modules() if type(m) is nn.Conv2d and '.attention.' not in n}
    assert len(odconvs) == 3 * (3 + 4 + 6 + 3)
    assert all(n.rsplit('.', 1)[-1] in ('conv1', 'conv2', 'conv3') and n.startswith('layer') for n in odconvs)
    assert static == {'conv1'} | {f'layer{i}.0.downsample.0' for i in range(1, 5)}
    assert model.layer2[0].conv2.stride == (2, 2) and model.layer2[0].conv1.stride == (1, 1)


def test_stage_with_odconv_mixes_static_and_odconv_stages():
    model = ODResNet(depth=18, kernel_num=2, stage_with_odconv=(False, True, False, True))
    for i, od in enumerate((False, True, False, True), 1):
        layer = getattr(model, f'layer{i}')
        assert isinstance(layer[0].conv1, ODConv2d) is od
        assert isinstance(layer[1].conv2, ODConv2d) is od
    assert type(model.layer2[0].downsample[0]) is nn.Conv2d
    # A static stage is exactly mmdet's ResNet stage.
    reference = ResNet(depth=18)
    assert model.layer1.state_dict().keys() == reference.layer1.state_dict().keys()
    out = model(torch.randn(2, 3, 32, 32))
    assert out[-1].shape == (2, 512, 1, 1)


def test_frozen_stages_and_norm_eval_cover_odconv_and_attention_norms():
    model = ODResNet(depth=18, kernel_num=2, frozen_stages=1, norm_eval=True)
    model.train()
    assert not any(p.requires_grad for p in model.layer1.parameters())
    assert not model.layer1[0].conv1.attention.fc.weight.requires_grad
    assert all(p.requires_grad for p in model.layer2.parameters())
    attention_bns = [m for m in model.modules() if isinstance(m, AttentionBatchNorm2d)]
    assert len(attention_bns) == 16 and not any(m.training for m in attention_bns)
    assert model.layer2[0].conv1.training  # the convs themselves stay in training mode
    before = model.layer3[0].conv1.attention.bn.running_mean.clone()
    model(torch.randn(2, 3, 32, 32))
    assert torch.equal(before, model.layer3[0].conv1.attention.bn.running_mean)

    free = ODResNet(depth=18, kernel_num=2, norm_eval=False)
    free.train()
    assert all(m.training for m in free.modules() if isinstance(m, AttentionBatchNorm2d))


def test_with_cp_trains():
    model = ODResNet(depth=18, kernel_num=2, with_cp=True)
    model.train()
    outs = model(torch.randn(2, 3, 32, 32))
    sum(o.mean() for o in outs).backward()
    assert model.layer1[0].conv1.weight.grad is not None


def test_bad_odresnet_arguments():
    with pytest.raises(ValueError, match='stage_with_odconv'):
        ODResNet(depth=18, stage_with_odconv=(True, False))
    with pytest.raises(KeyError, match='invalid depth'):
        ODResNet(depth=19)
    with pytest.raises(ValueError, match='kernel_num'):
        ODResNet(depth=18, kernel_num=0)
    with pytest.raises(ValueError, match='DCN'):
        ODResNet(depth=50, dcn=dict(type='DCNv2', deform_groups=1), stage_with_dcn=(False, True, True, True))


def test_official_odresnet18_checkpoint_loads_and_computes_official_features(tmp_path):
    official = official_odresnet(18, kernel_num=4)
    path = tmp_path / 'od_resnet18_4x.pth.tar'
    torch.save({'state_dict': official, 'epoch': 100}, path)
    model = ODResNet(depth=18, kernel_num=4, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    backbone_keys = {k[len('module.'):] for k in official if not k.startswith('module.fc.')}
    assert set(model.state_dict()) == backbone_keys  # nothing missing, nothing extra
    plain = {k[len('module.'):]: v for k, v in official.items()}
    for key, value in model.state_dict().items():
        assert torch.equal(value, plain[key]), key
    model.eval()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        ours = model.double()(x)
        expected = official_odresnet_features({k: v.double() if v.is_floating_point() else v
                                               for k, v in plain.items()}, x, 18, 4)
    for o, e in zip(ours, expected):
        torch.testing.assert_close(o, e, rtol=1e-8, atol=1e-9)


def test_official_odresnet50_k1_checkpoint_loads_with_no_missing_key(tmp_path):
    official = official_odresnet(50, kernel_num=1)
    model = ODResNet(depth=50, kernel_num=1)
    path = tmp_path / 'od_resnet50_1x.pth'
    torch.save(official, path)
    ckpt = load_checkpoint(model, str(path), map_location='cpu', strict=False)
    missing = set(model.state_dict()) - {k[len('module.'):] for k in ckpt}
    assert not missing
    assert torch.equal(model.layer4[2].conv3.weight, official['module.layer4.2.conv3.weight'])


@pytest.mark.parametrize('widen, channels', [(0.5, [16, 16, 48, 1280]), (0.75, [24, 24, 72, 1280]),
                                             (1.0, [24, 32, 96, 1280])])
def test_odmobilenetv2_shapes_and_topology(widen, channels):
    model = ODMobileNetV2(widen_factor=widen, kernel_num=4)
    model.eval()
    assert type(model.conv1.conv) is nn.Conv2d  # the stem stays static
    assert isinstance(model.conv2.conv, ODConv2d)  # the last 1x1 is ODConv
    convs = [m for m in model.modules() if isinstance(m, ODConv2d)]
    assert len(convs) == 17 * 3 - 1 + 1  # expand+dw+linear per block (first block: no expand), + conv2
    dw = model.layer2[0].depthwise_conv.conv
    assert dw.groups == dw.in_channels == dw.out_channels and dw.attention.filter_fc is None
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == channels


def test_odmobilenetv2_freezing_and_bad_conv_cfg():
    model = ODMobileNetV2(kernel_num=2, frozen_stages=2, norm_eval=True)
    model.train()
    assert not any(p.requires_grad for p in model.conv1.parameters())
    assert not any(p.requires_grad for p in model.layer2.parameters())
    assert all(p.requires_grad for p in model.layer3.parameters())
    assert not any(m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    with pytest.raises(ValueError, match='conv_cfg'):
        ODMobileNetV2(conv_cfg=dict(type='Conv2d'))


def test_official_odmobilenetv2_loads_after_conversion(tmp_path):
    from odconv_mmdet.converters import convert_official
    official = official_mobilenet_v2(0.5, kernel_num=4)
    arch, state_dict, mapping, dropped = convert_official({'state_dict': official})
    assert arch == 'mobilenet_v2' and dropped == ['classifier.1.weight', 'classifier.1.bias']
    model = ODMobileNetV2(widen_factor=0.5, kernel_num=4)
    result = model.load_state_dict(state_dict, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(model.layer7[0].linear_conv.conv.weight, official['features.17.conv.2.weight'])
    assert torch.equal(model.conv2.conv.attention.kernel_fc.bias, official['features.18.0.attention.kernel_fc.bias'])
