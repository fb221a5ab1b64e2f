"""TorchScript of the backbones, and ONNX export with a dynamic batch (an empty one included),
of the layer and, through tools/deployment/export_onnx.py, of backbones."""
import io
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

import odconv_mmdet  # noqa: F401
from mmdet.registry import MODELS
from odconv_mmdet.backbones import ODMobileNetV2, ODResNet
from odconv_mmdet.layers.odconv import set_temperature
from odconv_mmdet.utils.onnx_export import export_torchscript_onnx
from .test_odconv_layer import CASES, randomize
from .test_odconv_layer import build as build_case

ROOT = Path(__file__).resolve().parents[1]

# norm_eval=False: a script's train() sets every submodule to training; it does not replay
# mmdet's train() override (norm_eval, frozen_stages), so training-mode outputs compare only
# without them.
BACKBONES = {
    'odresnet18_k4': dict(type='ODResNet', depth=18, kernel_num=4, base_channels=8, out_indices=(0, 1, 2, 3),
                          norm_eval=False),
    'odresnet50_k1_static_stage1': dict(type='ODResNet', depth=50, kernel_num=1, base_channels=8,
                                        stage_with_odconv=(False, True, True, True), out_indices=(1, 3),
                                        norm_eval=False),
    'odmobilenetv2_k4': dict(type='ODMobileNetV2', kernel_num=4, widen_factor=0.25, out_indices=(2, 4, 7)),
}


def build(name):
    torch.manual_seed(0)
    return randomize(MODELS.build(dict(BACKBONES[name])), seed=1)


@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_backbone_scripts_and_matches_eager(name):
    # float64: once a script's executor has profiled a few calls (torch 2.0: two) it runs fused
    # kernels whose float32 rounding differs from eager's, and train-mode BN over a batch of 3
    # at 1x1 maps amplifies such differences from stage to stage.
    net = build(name).double()
    scripted = torch.jit.script(net)
    for training in (False, True):
        net.train(training)
        scripted.train(training)
        x = torch.randn(3, 3, 64, 64, dtype=torch.float64)
        state = {k: v.clone() for k, v in net.state_dict().items()}
        eager = net(x)
        net.load_state_dict(state)  # the scripted forward sees the same BN statistics
        for got, want in zip(scripted(x), eager):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
        assert len(scripted(x)) == len(eager)
    net.eval()
    scripted.eval()
    # The script shares the backbone's parameters; set_temperature reaches its ODConvs too.
    with torch.no_grad():
        next(p for n, p in net.named_parameters() if n.endswith('attention.fc.weight')).mul_(2)
    assert set_temperature(net, 3.0) == set_temperature(scripted, 3.0) > 0
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    for got, want in zip(scripted(x), net(x)):
        torch.testing.assert_close(got, want)
    assert isinstance(net, (ODResNet, ODMobileNetV2))  # the eager backbone is left as it was


def test_scripting_refuses_what_the_view_cannot_compute():
    net = ODResNet(depth=18, kernel_num=1, base_channels=8)
    net.layer1[0].with_plugins = True
    with pytest.raises(ValueError, match='plugins'):
        torch.jit.script(net)


def export(tmp_path, name, checkpoint=None, extra=()):
    config = tmp_path / f'{name}.py'
    config.write_text(f'custom_imports = dict(imports=["odconv_mmdet"], allow_failed_imports=False)\n'
                      f'model = dict(backbone={BACKBONES[name]!r})\n')
    out = tmp_path / f'{name}.onnx'
    args = [sys.executable, str(ROOT / 'tools' / 'deployment' / 'export_onnx.py'), str(config), str(out),
            '--input-size', '64', '64', *extra]
    if checkpoint:
        args += ['--checkpoint', str(checkpoint)]
    return subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=600), out


@pytest.mark.parametrize('name', ['odresnet18_k4', 'odmobilenetv2_k4'])
def test_onnx_export_runs_at_any_batch_size(tmp_path, name):
    net = build(name)
    net.eval()  # mmdet's train() override returns None, so no chaining
    checkpoint = tmp_path / 'detector.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in net.state_dict().items()},
                'meta': {'odconv_temperature': 2.5}}, checkpoint)
    result, out = export(tmp_path, name, checkpoint)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'ODConv temperature 2.5' in result.stdout
    set_temperature(net, 2.5)
    session = onnxruntime.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    assert session.get_inputs()[0].shape[0] == 'batch'
    for batch, size in ((1, 64), (3, 64), (5, 96), (0, 64)):  # an empty batch too
        x = torch.randn(batch, 3, size, size)
        with torch.no_grad():
            expected = net(x)
        got = session.run(None, {'input': x.numpy()})
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            assert g.shape == tuple(e.shape)
            if batch:
                np.testing.assert_allclose(g, e.numpy(), rtol=1e-4, atol=1e-4 * float(e.abs().max()))


@pytest.mark.parametrize('case', sorted(CASES))
def test_layer_onnx_export_takes_any_batch_including_an_empty_one(case):
    """The traced graph (batched matmul, im2col as tap slices) reshapes with sizes taken from
    shapes, never -1: onnxruntime runs it at batch 0, and at other sizes than traced."""
    layer = randomize(build_case(case)).eval()
    cin = layer.in_channels
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the tracer's notes on shape-dependent Python values
        export_torchscript_onnx(layer, torch.randn(2, cin, 9, 7), buffer, input_names=['x'], output_names=['y'],
                                dynamic_axes={'x': {0: 'batch', 2: 'height', 3: 'width'}})
    session = onnxruntime.InferenceSession(buffer.getvalue(), providers=['CPUExecutionProvider'])
    for batch, height, width in ((3, 9, 7), (0, 9, 7), (1, 12, 10), (0, 5, 6)):
        x = torch.randn(batch, cin, height, width)
        with torch.no_grad():
            expected = layer(x)
        got = session.run(None, {'x': x.numpy()})[0]
        assert got.shape == tuple(expected.shape)
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-4, atol=1e-5)


def test_export_errors_are_clear_and_leave_no_file(tmp_path):
    result, out = export(tmp_path, 'odresnet18_k4', checkpoint=tmp_path / 'missing.pth')
    assert result.returncode == 2 and 'missing.pth' in result.stderr
    assert not out.exists()
    wrong = tmp_path / 'wrong.pth'
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(1)}}, wrong)
    result, out = export(tmp_path, 'odresnet18_k4', checkpoint=wrong)
    assert result.returncode == 2 and 'conv1.weight (1,) vs (8, 3, 7, 7)' in result.stderr
    partial = tmp_path / 'partial.pth'
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(8, 3, 7, 7)}}, partial)
    result, out = export(tmp_path, 'odresnet18_k4', checkpoint=partial)
    assert result.returncode == 2 and 'lacks' in result.stderr
    assert not out.exists() and not list(tmp_path.glob('*.tmp'))
