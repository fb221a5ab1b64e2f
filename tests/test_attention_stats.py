"""Attention statistics (is ODConv's attention input-dependent?): the numbers, the recorder, the
hook's logging."""
import math

import pytest
import torch

import odconv_mmdet  # noqa: F401
from odconv_mmdet.hooks import ODConvTemperatureHook
from odconv_mmdet.hooks.attention_stats import AttentionRecorder, attention_statistics, stage_of
from odconv_mmdet.layers.odconv import ODConv2d, odconv_layers
from odconv_mmdet.testing.toy_runner import build_runner


@pytest.mark.parametrize('name, stage', [
    ('backbone.layer2.1.conv2', 'backbone.layer2'),
    ('module.backbone.layer1.0.conv1', 'backbone.layer1'),
    ('backbone.layer3.0.conv.1.conv', 'backbone.layer3'),
    ('neck.fpn_convs.0.conv', 'neck.fpn_convs'),
    ('conv', 'conv'),
    ('head.conv', 'head'),
])
def test_stage_names(name, stage):
    assert stage_of(name) == stage


def test_statistics_against_hand_computed_values():
    uniform = torch.full((2, 4), 0.25)
    one_hot = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    # channel attention of 2 samples: per-channel population std |a - b| / 2 = 0.2 and 0.1
    channel = torch.tensor([[0.2, 0.5], [0.6, 0.7]]).view(2, 2, 1, 1)
    same_filter = torch.full((2, 3, 1, 1), 0.5)
    records = {
        'backbone.layer1.0.conv1': (channel, same_filter, None, uniform),
        'backbone.layer1.1.conv1': (channel, same_filter, None, one_hot),
        'backbone.layer2.0.conv1': (channel[:1], None, None, None),  # one sample: no spread
    }
    stats = attention_statistics(records)
    assert set(stats) == {'backbone.layer1'}
    layer1 = stats['backbone.layer1']
    assert layer1['kernel_entropy'] == pytest.approx((math.log(4) + 0.0) / 2, abs=1e-6)
    assert layer1['channel_spread'] == pytest.approx((0.2 + 0.1) / 2, abs=1e-6)
    assert layer1['filter_spread'] == pytest.approx(0.0, abs=1e-7)  # input-independent: collapsed


def test_recorder_sees_every_layer_and_lets_go():
    from odconv_mmdet.backbones import ODResNet
    net = ODResNet(depth=18, kernel_num=4, base_channels=8)
    net.eval()  # (mmdet's train() returns None)
    with AttentionRecorder(net) as recorder:
        net(torch.randn(3, 3, 32, 32))
    assert len(recorder.records) == len(odconv_layers(net)) == 16
    channel, filter_att, spatial, kernel = recorder.records['layer1.0.conv1']
    assert channel.shape == (3, 8, 1, 1) and spatial.shape == (3, 3, 3) and kernel.shape == (3, 4)
    stats = recorder.statistics()
    assert set(stats) == {'layer1', 'layer2', 'layer3', 'layer4'}
    for values in stats.values():
        assert 0 <= values['kernel_entropy'] <= math.log(4) + 1e-6
        assert values['channel_spread'] > 0 and values['filter_spread'] > 0
    # after the with-block the hooks are gone
    before = {name: tuple(t for t in r if t is not None) for name, r in recorder.records.items()}
    net(torch.randn(2, 3, 32, 32))
    assert {name: tuple(t for t in r if t is not None) for name, r in recorder.records.items()}.keys() == before.keys()
    assert recorder.records['layer1.0.conv1'][0].shape[0] == 3


def test_hook_logs_attention_statistics_at_its_interval(tmp_path):
    hook = dict(type='ODConvTemperatureHook', init_temperature=10, anneal_epochs=2, attention_stats_interval=2)
    runner = build_runner(tmp_path, max_epochs=1, hook_cfg=hook)
    runner.train()
    entropy = runner.message_hub.get_scalar('train/odconv_attention/conv/kernel_entropy').data[0]
    spread = runner.message_hub.get_scalar('train/odconv_attention/conv/channel_spread').data[0]
    assert len(entropy) == len(spread) == 2  # 4 iterations, every 2nd recorded
    assert all(0 <= v <= math.log(2) + 1e-6 for v in entropy)  # K = 2
    assert all(v >= 0 for v in spread)
    assert not runner.model.conv.attention._forward_hooks  # removed after each recorded iteration


def test_hook_statistics_equal_a_direct_computation():
    """The recorder's entropy equals the entropy of the softmax computed from the layer's
    own attention head on the same input, by hand."""
    torch.manual_seed(0)
    layer = ODConv2d(8, 8, 3, padding=1, kernel_num=4).eval()
    layer.update_temperature(2.0)
    x = torch.randn(4, 8, 6, 6)
    with AttentionRecorder(layer) as recorder:
        layer(x)
    att = layer.attention
    with torch.no_grad():
        z = torch.relu(att.bn(x.mean(dim=(2, 3)) @ att.fc.weight.flatten(1).t()))
        p = torch.softmax((z @ att.kernel_fc.weight.flatten(1).t() + att.kernel_fc.bias) / 2.0, dim=1)
        c = torch.sigmoid((z @ att.channel_fc.weight.flatten(1).t() + att.channel_fc.bias) / 2.0)
    expected_entropy = (-(p * p.log()).sum(dim=1)).mean().item()
    stats = recorder.statistics()
    assert set(stats) == {''}  # a bare layer: its module path is empty
    values = stats['']
    assert values['kernel_entropy'] == pytest.approx(expected_entropy, rel=1e-5)
    assert values['channel_spread'] == pytest.approx(c.std(dim=0, unbiased=False).mean().item(), rel=1e-5)


def test_bad_interval_is_named():
    with pytest.raises(ValueError, match='attention_stats_interval must be a positive integer'):
        ODConvTemperatureHook(init_temperature=10, anneal_iters=5, attention_stats_interval=0)
