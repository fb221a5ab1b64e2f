"""Every mmdet config in configs/ parses and builds its model (no weights are loaded); the
mmpretrain ones (pretraining) are tested in test_pretraining.py."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmdet.registry import MODELS

import odconv_mmdet  # noqa: F401
from odconv_mmdet.layers.odconv import ODConv2d

ROOT = Path(__file__).resolve().parents[1]
MMPRETRAIN_FOLDERS = {'odconv_imagenet', 'shapes_cls'}
CONFIGS = sorted(p for p in (ROOT / 'configs').rglob('*.py')
                 if '_base_' not in p.parts and not MMPRETRAIN_FOLDERS & set(p.parts))


def test_the_expected_configs_exist():
    names = {p.name for p in CONFIGS}
    for detector in ('faster-rcnn', 'mask-rcnn'):
        for backbone in ('odr50-k1', 'odr50-k4', 'r50', 'odmbv2-k4', 'mbv2'):
            assert f'{detector}_{backbone}_fpn_1x_coco.py' in names
    assert {'faster-rcnn_odr18-k4_fpn_shapes.py', 'faster-rcnn_r18_fpn_shapes.py',
            'mask-rcnn_odr18-k4_fpn_shapes.py', 'faster-rcnn_odx101-32x4d-k4_fpn_1x_coco.py',
            'rtmdet_odcspnext-tiny-k4_8xb32-300e_coco.py'} <= names


@pytest.mark.parametrize('name, inner', [('faster-rcnn_odx101-32x4d-k4_fpn_1x_coco.py', 'ResNeXt'),
                                         ('rtmdet_odcspnext-tiny-k4_8xb32-300e_coco.py', 'CSPNeXt')])
def test_any_backbone_configs_wrap_a_static_pretrained_backbone(name, inner):
    cfg = Config.fromfile(str(ROOT / 'configs' / 'odconv' / name))
    backbone = cfg.model.backbone
    assert backbone.type == 'ODConvBackbone' and backbone.backbone.type == inner
    assert backbone.backbone.init_cfg.type == 'Pretrained'
    assert 'ODConvTemperatureHook' not in [h['type'] for h in cfg.get('custom_hooks', [])]


@pytest.mark.parametrize('name, layer, kernel_num, quoted', [
    ('faster-rcnn_condconv-r50-8x_fpn_1x_coco.py', 'CondConv2d', 8, 'CondConv 8x 38.1'),
    ('faster-rcnn_dyconv-r50-4x_fpn_1x_coco.py', 'DyConv2d', 4, 'DyConv 4x 38.3')])
def test_condconv_and_dyconv_coco_configs(name, layer, kernel_num, quoted):
    path = ROOT / 'configs' / 'odconv' / name
    header = path.read_text().split('_base_')[0]
    assert quoted in header and 'ODConv 4x 39.2' in header and 'not measured here' in header
    cfg = Config.fromfile(str(path))
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    layers = [m for m in model.backbone.modules() if isinstance(m, ODConv2d)]
    assert len(layers) == 48 and {type(m).__name__ for m in layers} == {layer}  # 16 bottlenecks x 3
    assert all(m.kernel_num == kernel_num for m in layers)
    assert cfg.model.backbone.backbone.init_cfg.checkpoint == 'torchvision://resnet50'
    assert 'ODConvTemperatureHook' not in [h['type'] for h in cfg.get('custom_hooks', [])]


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: str(p.relative_to(ROOT / 'configs')))
def test_config_builds_its_model(path):
    cfg = Config.fromfile(str(path))
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    has_odconv = any(isinstance(m, ODConv2d) for m in model.modules())  # CondConv2d, DyConv2d included
    backbone_name = path.name.split('_')[1]
    assert has_odconv == ('od' in backbone_name or backbone_name.startswith(('condconv', 'dyconv')))
    hooks = [h['type'] for h in cfg.get('custom_hooks', [])]
    if 'ODConvTemperatureHook' in hooks:
        assert has_odconv
    bbox_head = model.roi_head.bbox_head if hasattr(model, 'roi_head') else model.bbox_head
    if '_shapes' in path.name:
        assert bbox_head.num_classes == 4
        model.eval()
        with torch.no_grad():
            feats = model.extract_feat(torch.randn(1, 3, 128, 128))
        assert len(feats) == 5 and feats[0].shape[1] == 64
    else:
        assert bbox_head.num_classes == 80
    if 'mask-rcnn' in path.name:
        assert model.with_mask
