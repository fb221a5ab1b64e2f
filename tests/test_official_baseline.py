"""odconv_mmdet/testing/official.py, the benchmarks' official baseline, against the reference formulas."""
import copy

import pytest
import torch

from odconv_mmdet.testing import official as official_odconv
from odconv_mmdet.testing.official import OfficialODConv2d
from odconv_mmdet.testing.reference import reference_odconv

from .test_odconv_layer import CASES, build, randomize


@pytest.mark.parametrize('training', [False, True])
@pytest.mark.parametrize('case', sorted(CASES))
def test_official_baseline_matches_reference(case, training):
    cin, cout, k, s, p, d, g, kn = CASES[case]
    layer = randomize(build(case)).double().train(training)
    official = OfficialODConv2d.from_layer(layer)
    official.attention.temperature = 0.7
    sd = {name: t.clone() for name, t in layer.state_dict().items()}
    x = torch.randn(3, cin, 9, 7, dtype=torch.float64, requires_grad=True)
    out = official(x)
    expected = reference_odconv(sd, x, kernel_size=k, stride=s, padding=p, dilation=d, groups=g,
                                kernel_num=kn, temperature=0.7, training=training)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)
    # and its gradients are those of the same function
    out.backward(torch.cos(out.detach()))
    x_ref = x.detach().clone().requires_grad_(True)
    weight = sd['weight'].clone().requires_grad_(True)
    reference_odconv(dict(sd, weight=weight), x_ref, kernel_size=k, stride=s, padding=p, dilation=d,
                     groups=g, kernel_num=kn, temperature=0.7, training=training).backward(
        torch.cos(out.detach()))
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(official.weight.grad, weight.grad, rtol=1e-9, atol=1e-10)


def record_conv_groups(monkeypatch):
    groups = []
    conv2d = official_odconv.F.conv2d

    def spy(x, weight, bias, stride, padding, dilation, g):
        groups.append((g, tuple(weight.shape)))
        return conv2d(x, weight, bias, stride, padding, dilation, g)
    monkeypatch.setattr(official_odconv.F, 'conv2d', spy)
    return groups


def test_official_baseline_takes_the_k1_pointwise_shortcut(monkeypatch):
    layer = build('1x1_K1_static_path')
    official = OfficialODConv2d.from_layer(layer)
    groups = record_conv_groups(monkeypatch)
    official(torch.randn(4, 8, 5, 5))
    # the attention's 1x1 head convs come first; the layer's own conv is the last one
    assert groups[-1] == (1, (16, 8, 1, 1))  # one conv with the shared kernel
    assert len(groups) == 1 + 3  # fc, channel_fc, filter_fc


def test_official_baseline_folds_the_batch_into_groups_otherwise(monkeypatch):
    official = OfficialODConv2d.from_layer(build('3x3_K4_groups4'))
    groups = record_conv_groups(monkeypatch)
    official(torch.randn(4, 8, 5, 5))
    assert groups[-1] == (16, (64, 2, 3, 3))  # groups * B, per-sample kernels
    assert len(groups) == 1 + 5  # fc and the four heads ran as convs


def test_official_baseline_attention_uses_pooling_and_conv_heads():
    official = OfficialODConv2d.from_layer(build('3x3_K4'))
    kinds = {type(m).__name__ for m in official.attention.modules()}
    assert {'AdaptiveAvgPool2d', 'Conv2d', 'BatchNorm2d', 'ReLU'} <= kinds


def test_official_baseline_refuses_batch1_training_like_the_official_bn():
    official = OfficialODConv2d.from_layer(build('3x3_K4').train())
    with pytest.raises(ValueError, match='Expected more than 1 value per channel'):
        official(torch.randn(1, 8, 5, 5))
    official.attention.bn.eval()
    assert official(torch.randn(1, 8, 5, 5)).shape == (1, 16, 5, 5)


def test_from_layer_copies_without_sharing():
    layer = build('3x3_K4')
    official = OfficialODConv2d.from_layer(copy.deepcopy(layer))
    assert official.weight.data_ptr() != layer.weight.data_ptr()
    torch.testing.assert_close(official.weight, layer.weight)
