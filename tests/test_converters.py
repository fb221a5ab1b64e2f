"""tools/model_converters/convert_official_checkpoint.py and tools/model_converters/inflate_static_checkpoint.py, through their CLIs."""
import subprocess
import sys
from pathlib import Path

import torch
from mmdet.models.backbones import MobileNetV2, ResNet

import odconv_mmdet  # noqa: F401
from odconv_mmdet.backbones import ODMobileNetV2, ODResNet
from odconv_mmdet.layers.odconv import set_temperature
from odconv_mmdet.testing.official_format import official_mobilenet_v2, official_odresnet

ROOT = Path(__file__).resolve().parents[1]


def run_tool(name, *args):
    return subprocess.run([sys.executable, str(ROOT / 'tools' / 'model_converters' / name), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT)


def test_convert_official_resnet_roundtrip(tmp_path):
    official = official_odresnet(18, kernel_num=4)
    src, dst = tmp_path / 'od_resnet18_4x.pth.tar', tmp_path / 'converted.pth'
    torch.save({'state_dict': official, 'best_acc1': 74.19}, src)
    result = run_tool('convert_official_checkpoint.py', src, dst)
    assert result.returncode == 0, result.stderr
    n_backbone = len(official) - 2
    assert f'resnet: mapped {n_backbone} tensors (0 renamed), dropped classifier keys: fc.weight, fc.bias' \
        in result.stdout
    model = ODResNet(depth=18, kernel_num=4, init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    model.init_weights()
    saved = torch.load(dst, weights_only=False)['state_dict']
    assert set(saved) == set(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(value, official['module.' + key])


def test_convert_official_mobilenet_roundtrip(tmp_path):
    official = official_mobilenet_v2(0.75, kernel_num=1)
    src, dst = tmp_path / 'od_mobilenetv2_075.pth', tmp_path / 'converted.pth'
    torch.save({'module.' + k: v for k, v in official.items()}, src)
    result = run_tool('convert_official_checkpoint.py', src, dst)
    assert result.returncode == 0, result.stderr
    assert 'mobilenet_v2: mapped' in result.stdout and 'classifier.1.weight' in result.stdout
    model = ODMobileNetV2(widen_factor=0.75, kernel_num=1)
    model.load_state_dict(torch.load(dst, weights_only=False)['state_dict'], strict=True)
    assert torch.equal(model.layer1[0].depthwise_conv.conv.weight, official['features.1.conv.0.0.weight'])


def test_convert_rejects_unrecognised_and_missing_files(tmp_path):
    bad = tmp_path / 'bad.pth'
    torch.save({'encoder.weight': torch.ones(2)}, bad)
    result = run_tool('convert_official_checkpoint.py', bad, tmp_path / 'out.pth')
    assert result.returncode == 2
    assert 'not an official OD-ResNet or OD-MobileNetV2 checkpoint' in result.stderr
    assert 'encoder.weight' in result.stderr
    assert not (tmp_path / 'out.pth').exists()
    result = run_tool('convert_official_checkpoint.py', tmp_path / 'nope.pth', tmp_path / 'out.pth')
    assert result.returncode != 0 and 'checkpoint not found' in result.stderr


def _randomize_bn(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(1 + torch.rand(m.num_features, generator=gen))
            m.weight.data.copy_(1 + torch.randn(m.num_features, generator=gen) * 0.1)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


def test_inflate_static_resnet_reproduces_the_static_network_at_any_temperature(tmp_path):
    torch.manual_seed(0)
    static = ResNet(depth=18)
    _randomize_bn(static)
    src, dst = tmp_path / 'resnet18.pth', tmp_path / 'odresnet18_k4.pth'
    state = static.state_dict()
    state['fc.weight'], state['fc.bias'] = torch.randn(10, 512), torch.randn(10)  # a torchvision classifier
    torch.save(state, src)
    result = run_tool('inflate_static_checkpoint.py', src, dst, '--depth', 18, '--kernel-num', 4)
    assert result.returncode == 0, result.stderr
    assert 'inflated 16 convs' in result.stdout and 'dropped 2 classifier keys' in result.stdout
    model = ODResNet(depth=18, kernel_num=4, init_cfg=dict(type='Pretrained', checkpoint=str(dst)))
    model.init_weights()
    w = model.layer1[0].conv1.weight
    assert w.shape == (4, 64, 64, 3, 3)
    for i in range(4):  # every kernel seeded from the static one, scaled for three sigmoid attentions
        torch.testing.assert_close(w[i], static.layer1[0].conv1.weight * 8)
    assert torch.equal(model.layer2[0].downsample[0].weight, static.layer2[0].downsample[0].weight)
    assert torch.all(model.layer1[0].conv1.attention.channel_fc.weight == 0)  # sigmoid heads start at 1/2
    model.eval()
    static.eval()
    x = torch.randn(2, 3, 64, 64)
    for temperature in (1e9, 1.0):
        set_temperature(model, temperature)
        with torch.no_grad():
            for ours, ref in zip(model(x), static(x)):
                torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


def test_inflate_torchvision_named_mobilenet(tmp_path):
    static = official_mobilenet_v2(1.0, kernel_num=None)  # torchvision naming, static convs
    src, dst = tmp_path / 'mobilenet_v2.pth', tmp_path / 'odmbv2.pth'
    torch.save(static, src)
    result = run_tool('inflate_static_checkpoint.py', src, dst, '--arch', 'mobilenet_v2', '--kernel-num', 2)
    assert result.returncode == 0, result.stderr
    model = ODMobileNetV2(kernel_num=2)
    model.load_state_dict(torch.load(dst, weights_only=False)['state_dict'], strict=True)
    dw = model.layer2[0].depthwise_conv.conv.weight  # depthwise: channel and spatial attention only
    torch.testing.assert_close(dw[1], static['features.2.conv.1.0.weight'] * 4)
    assert torch.equal(model.conv1.conv.weight, static['features.0.0.weight'])


def test_inflate_mmdet_named_mobilenet_matches_static_network(tmp_path):
    torch.manual_seed(1)
    static = MobileNetV2(widen_factor=0.5, out_indices=(7,))
    _randomize_bn(static)
    src, dst = tmp_path / 'mbv2.pth', tmp_path / 'odmbv2.pth'
    torch.save({'state_dict': {'backbone.' + k: v for k, v in static.state_dict().items()}}, src)
    result = run_tool('inflate_static_checkpoint.py', src, dst, '--arch', 'mobilenet_v2',
                      '--widen-factor', 0.5, '--kernel-num', 4)
    assert result.returncode == 0, result.stderr
    model = ODMobileNetV2(widen_factor=0.5, kernel_num=4, out_indices=(7,))
    model.load_state_dict(torch.load(dst, weights_only=False)['state_dict'], strict=True)
    model.eval()
    static.eval()
    x = torch.randn(2, 3, 64, 64)
    for temperature in (1e9, 1.0):
        set_temperature(model, temperature)
        with torch.no_grad():
            torch.testing.assert_close(model(x)[0], static(x)[0], rtol=1e-4, atol=1e-4)


def test_inflate_rejects_a_checkpoint_of_another_depth(tmp_path):
    src = tmp_path / 'resnet50.pth'
    torch.save(ResNet(depth=50).state_dict(), src)
    result = run_tool('inflate_static_checkpoint.py', src, tmp_path / 'out.pth', '--depth', 18)
    assert result.returncode == 2
    assert 'does not fit this backbone' in result.stderr
    assert not (tmp_path / 'out.pth').exists()
