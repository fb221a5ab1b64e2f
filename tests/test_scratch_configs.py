"""The from-scratch ODConv configs: mmdet's GN scratch recipe with the temperature hook over the
first tenth of training; each builds and trains an iteration on the shapes set."""
import json
import statistics
import sys
from pathlib import Path

import pytest
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmdet import __file__ as mmdet_init
from mmdet.registry import MODELS

import odconv_mmdet
from odconv_mmdet.datasets import generate_shapes_dataset
from .test_tools_e2e import run, tiny_config, tool

ROOT = Path(__file__).resolve().parents[1]
MMDET_CONFIGS = Path(mmdet_init).parent / '.mim' / 'configs'  # the static twins, as mmdet installs them
COCO_SCRATCH = ['faster-rcnn_odr50-k4-scratch_fpn_gn-all_6x_coco.py', 'mask-rcnn_odr50-k4-scratch_fpn_gn-all_6x_coco.py']


def without_scope(value):
    """A config value without the `_scope_` keys that inheriting through `mmdet::` adds."""
    if isinstance(value, dict):
        return {k: without_scope(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return [without_scope(v) for v in value]
    return value


def norm_types(model):
    return {type(m) for m in model.modules() if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm))}


@pytest.mark.parametrize('name', COCO_SCRATCH)
def test_coco_scratch_config_is_mmdets_recipe_with_odconv_and_the_hook(name):
    cfg = Config.fromfile(str(ROOT / 'configs' / 'odconv' / name))
    static = Config.fromfile(str(MMDET_CONFIGS / 'scratch' / name.replace('odr50-k4-scratch', 'r50-scratch')))
    assert cfg.train_cfg.max_epochs == static.train_cfg.max_epochs == 73
    assert without_scope(cfg.param_scheduler) == without_scope(static.param_scheduler)
    assert without_scope(cfg.model.neck) == without_scope(static.model.neck)
    assert without_scope(cfg.model.roi_head) == without_scope(static.model.roi_head)
    hooks = [h for h in cfg.custom_hooks if h['type'] == 'ODConvTemperatureHook']
    assert len(hooks) == 1 and hooks[0]['init_temperature'] == 30
    assert hooks[0]['anneal_epochs'] == pytest.approx(cfg.train_cfg.max_epochs / 10)  # official: 10 of 100
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    layers = odconv_mmdet.odconv_layers(model)
    assert len(layers) == 48 and all(layer.kernel_num == 4 for layer in layers)
    assert norm_types(model) == {nn.GroupNorm}  # GN everywhere, the attention norms included


@pytest.mark.parametrize('name', COCO_SCRATCH)
def test_coco_scratch_config_trains_an_iteration_on_the_shapes_set(name, tmp_path):
    data = tmp_path / 'shapes'
    generate_shapes_dataset(data, num_train=2, num_val=2, seed=5)
    masks = 'mask-rcnn' in name
    user_config = tmp_path / 'user.py'
    user_config.write_text(f'''
_base_ = [{str(ROOT / 'configs' / 'odconv' / name)!r}]
model = dict(roi_head=dict(bbox_head=dict(num_classes=4){', mask_head=dict(num_classes=4)' if masks else ''}))
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(
    data_root={str(data) + '/'!r}, ann_file='annotations/train.json', data_prefix=dict(img='train/'),
    metainfo=dict(classes=('circle', 'square', 'triangle', 'star')),
    pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True, with_mask={masks}),
              dict(type='Resize', scale=(128, 128), keep_ratio=True), dict(type='PackDetInputs')]))
train_cfg = dict(max_epochs=1)
val_cfg = None
val_dataloader = None
val_evaluator = None
test_cfg = None
test_dataloader = None
test_evaluator = None
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
''')
    result = tool('train.py', user_config, '--work-dir', tmp_path / 'work')
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    # 1 iteration per epoch: anneal_epochs 7.3 -> 7 iterations, so after the first T = 1 + 29 * 6 / 7
    assert 'odconv_temperature: 25.8571' in log
    assert 'loss_bbox' in log and (('loss_mask' in log) == masks)
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()


def test_seeds_table_trains_each_seed_and_summarises(tmp_path):
    data = tmp_path / 'shapes'
    generate_shapes_dataset(data, num_train=8, num_val=4, seed=3)
    cfg = tiny_config(tmp_path, data, base='faster-rcnn_r18_fpn_shapes.py', extra='custom_hooks = []\n')
    out = tmp_path / 'seeds.json'
    result = run(sys.executable, ROOT / 'benchmarks' / 'seeds_table.py', '--configs', cfg, '--seeds', '0', '1', '--work-dir', tmp_path / 'work',
                  '--out', out, '--cfg-options', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=1')
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(out.read_text())
    runs = data['table'][0]['runs']
    assert [r['seed'] for r in runs] == [0, 1]
    maps = [r['bbox_mAP'] for r in runs]
    assert all(0 <= m <= 1 for m in maps) and all(r['seconds'] > 0 for r in runs)
    assert data['table'][0]['summary']['bbox_mAP_mean'] == pytest.approx(statistics.mean(maps))
    assert data['table'][0]['summary']['bbox_mAP_std'] == pytest.approx(statistics.stdev(maps))
    assert '| `tiny_faster-rcnn_r18_fpn_shapes.py` |' in data['markdown']
