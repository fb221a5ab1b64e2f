"""A checkpoint that would load nothing into a backbone is refused with the prefix it needs."""
import pytest
import torch
from mmengine.runner import load_checkpoint

import odconv_mmdet  # noqa: F401
from mmdet.registry import MODELS

BACKBONES = [
    dict(type='ODResNet', depth=18, base_channels=16, kernel_num=2),
    dict(type='ODMobileNetV2', widen_factor=0.5, kernel_num=2),
    dict(type='ODConvBackbone', kernel_num=2, backbone=dict(type='ResNet', depth=18, base_channels=16)),
]


def classifier_checkpoint(tmp_path, backbone):
    """What mmpretrain's runner writes: the backbone's weights under 'backbone.', and a head."""
    state = {'backbone.' + k: v.clone() for k, v in backbone.state_dict().items()}
    state['head.fc.weight'] = torch.randn(10, 8)
    path = tmp_path / 'classifier.pth'
    torch.save(dict(state_dict=state, meta=dict()), path)
    return str(path)


def randomised(module):
    with torch.no_grad():
        for p in module.parameters():
            p.normal_()
    return module


@pytest.mark.parametrize('cfg', BACKBONES, ids=lambda c: c['type'])
def test_pretrained_with_the_right_prefix_loads_every_weight(tmp_path, cfg):
    source = randomised(MODELS.build(cfg))
    checkpoint = classifier_checkpoint(tmp_path, source)
    target = MODELS.build(dict(cfg, init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')))
    target.init_weights()
    expected = source.state_dict()
    for key, value in target.state_dict().items():
        assert torch.equal(value, expected[key]), key


@pytest.mark.parametrize('cfg', BACKBONES, ids=lambda c: c['type'])
def test_a_missing_prefix_is_refused_naming_the_prefix(tmp_path, cfg):
    checkpoint = classifier_checkpoint(tmp_path, MODELS.build(cfg))
    target = MODELS.build(dict(cfg, init_cfg=dict(type='Pretrained', checkpoint=checkpoint)))
    with pytest.raises(ValueError, match=r"under the prefix 'backbone\.'.*prefix='backbone\.'"):
        target.init_weights()
    with pytest.raises(ValueError, match=r"prefix 'backbone\.'"):  # and mmengine's load_checkpoint
        load_checkpoint(MODELS.build(cfg), checkpoint)


@pytest.mark.parametrize('cfg', BACKBONES, ids=lambda c: c['type'])
def test_a_wrong_prefix_is_refused(tmp_path, cfg):
    checkpoint = classifier_checkpoint(tmp_path, MODELS.build(cfg))
    # a prefix in the checkpoint that holds no backbone weights
    target = MODELS.build(dict(cfg, init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='head.')))
    with pytest.raises(ValueError, match=r"none of this backbone's \d+ weights.*\['fc'\]"):
        target.init_weights()
    # a prefix no key starts with: mmengine's own check names it
    target = MODELS.build(dict(cfg, init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbon.')))
    with pytest.raises(AssertionError, match=r'backbon\. is not in the pretrained model'):
        target.init_weights()


def test_inside_a_whole_model_a_checkpoint_without_backbone_weights_still_loads():
    # Only the root of a load is checked: a detector-level load that brings no backbone weights
    # (e.g. a head-only checkpoint, strict=False) is left to the caller, as in mmengine.
    model = torch.nn.Module()
    model.backbone = MODELS.build(BACKBONES[0])
    model.head = torch.nn.Linear(4, 2)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    result = model.load_state_dict({'head.weight': torch.zeros(2, 4), 'head.bias': torch.zeros(2)}, strict=False)
    assert result.missing_keys and not result.unexpected_keys
    assert all(torch.equal(v, before[k]) for k, v in model.backbone.state_dict().items())
    assert torch.count_nonzero(model.head.weight) == 0
