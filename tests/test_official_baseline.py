"""odconv_mmdet/testing/official.py, the tests' oracle and the benchmarks' baseline, against
independent computations: one static conv where the attentions are known, and one sample at a time."""
import copy

import pytest
import torch

from odconv_mmdet.testing import official as official_odconv
from odconv_mmdet.testing.official import OfficialODConv2d, reference_odconv

from .test_odconv_layer import CASES, build, randomize


def constant_attention(layer, gen):
    """Zero head weights and random head biases: every attention is a known constant."""
    with torch.no_grad():
        for name in ('channel_fc', 'filter_fc', 'spatial_fc', 'kernel_fc'):
            head = getattr(layer.attention, name)
            if head is not None:
                head.weight.zero_()
                head.bias.copy_(torch.randn(head.bias.shape, generator=gen, dtype=head.bias.dtype))
    return layer


@pytest.mark.parametrize('case', sorted(CASES))
def test_reference_with_known_attentions_is_the_paper_formula_on_one_static_conv(case):
    # Independent of the attention branch: alpha_c = sigmoid(b_c / T) and so on, and then
    # y = alpha_f * conv(alpha_c * x, sum_i alpha_w[i] * alpha_s * W_i), one F.conv2d for the batch.
    cin, cout, k, s, p, d, g, kn = CASES[case]
    gen = torch.Generator().manual_seed(2)
    layer = constant_attention(randomize(build(case)).double().eval(), gen)
    att, t = layer.attention, 1.9
    sd = {name: v.clone() for name, v in layer.state_dict().items()}
    x = torch.randn(3, cin, 9, 7, dtype=torch.float64, generator=gen)
    sigmoid = (lambda head, n: torch.ones(n, dtype=torch.float64) if head is None else torch.sigmoid(head.bias / t))
    alpha_c, alpha_f = sigmoid(att.channel_fc, cin), sigmoid(att.filter_fc, cout)
    alpha_s = sigmoid(att.spatial_fc, 1).view(k, k) if k > 1 else torch.ones(1, 1, dtype=torch.float64)
    alpha_w = torch.softmax(att.kernel_fc.bias / t, 0) if kn > 1 else torch.ones(1, dtype=torch.float64)
    kernel = sum(alpha_w[i] * alpha_s * layer.weight[i] for i in range(kn))
    expected = torch.nn.functional.conv2d(x * alpha_c.view(1, -1, 1, 1), kernel, None, s, p, d, g)
    expected = expected * alpha_f.view(1, -1, 1, 1)
    out = reference_odconv(sd, x, kernel_size=k, stride=s, padding=p, dilation=d, groups=g, kernel_num=kn,
                           temperature=t)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('case', sorted(CASES))
def test_reference_computes_each_sample_on_its_own(case):
    # With attentions that vary per sample: the batch folded into the groups of one conv gives
    # what each sample alone gives.
    cin, cout, k, s, p, d, g, kn = CASES[case]
    layer = randomize(build(case)).double().eval()
    sd = {name: v.clone() for name, v in layer.state_dict().items()}
    x = torch.randn(3, cin, 9, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    run = (lambda x: reference_odconv(sd, x, kernel_size=k, stride=s, padding=p, dilation=d, groups=g,
                                      kernel_num=kn, temperature=0.7))
    batched = run(x)
    singles = torch.cat([run(x[b:b + 1]) for b in range(3)])
    torch.testing.assert_close(batched, singles, rtol=1e-12, atol=1e-12)
    assert (batched[0] - batched[1]).abs().max() > 1e-3  # the samples differ


def test_reference_trains_with_batch_statistics_leaves_the_buffers_and_passes_gradients():
    layer = randomize(build('3x3_K4')).double()
    sd = {name: v.clone() for name, v in layer.state_dict().items()}
    running = sd['attention.bn.running_mean'].clone()
    x = torch.randn(4, 8, 6, 6, dtype=torch.float64)
    kwargs = dict(kernel_size=3, padding=1, kernel_num=4)
    train = reference_odconv(sd, x, training=True, **kwargs)
    assert (train - reference_odconv(sd, x, **kwargs)).abs().max() > 1e-3  # batch statistics
    torch.testing.assert_close(sd['attention.bn.running_mean'], running, rtol=0, atol=0)
    # batch 1 in training: the running statistics, as the layer's BatchNorm does
    torch.testing.assert_close(reference_odconv(sd, x[:1], training=True, **kwargs),
                               reference_odconv(sd, x[:1], **kwargs))
    weight = sd['weight'].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda w, x: reference_odconv(dict(sd, weight=w), x, training=True, **kwargs),
                                    (weight, x[:2, :, :4, :4].clone().requires_grad_(True)))


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
