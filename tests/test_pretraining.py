"""Pretraining with mmpretrain (issue 30): the official ImageNet recipe's configs, a user's config
training on the built-in classification set through mmpretrain's own train tool, and its
checkpoint loading into mmdet's ODResNet. Skipped, with the reason, where mmpretrain cannot run."""
import glob
import json
import os
import re
import subprocess
import sys

import pytest
import torch

from .mmpretrain_stack import require_mmpretrain

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGENET = os.path.join(REPO, 'configs', 'odconv_imagenet')

# From ../shared/docs/odconv-reference.md (the official recipe and the released top-1).
RESNET_RECIPE = dict(epochs=100, lr=0.1, weight_decay=1e-4, milestones=[30, 60, 90])
MOBILENET_RECIPE = dict(epochs=150, lr=0.05, weight_decay=4e-5)
RELEASED = {  # config: (backbone type, K or None for static, released top-1)
    'resnet18_8xb32-dropout_in1k.py': ('ResNet', None, '70.25'),
    'odresnet18-k1_8xb32_in1k.py': ('ODResNet', 1, '73.05'),
    'odresnet18-k4_8xb32_in1k.py': ('ODResNet', 4, '74.19'),
    'resnet50_8xb32-dropout_in1k.py': ('ResNet', None, '76.23'),
    'odresnet50-k1_8xb32_in1k.py': ('ODResNet', 1, '77.87'),
    'odresnet50-k4_8xb32_in1k.py': ('ODResNet', 4, '78.50'),
    'resnet101_8xb32-dropout_in1k.py': ('ResNet', None, '77.44'),
    'odresnet101-k1_8xb32_in1k.py': ('ODResNet', 1, '78.84'),
    'odresnet101-k2_8xb32_in1k.py': ('ODResNet', 2, '79.15'),
    'mobilenet-v2-1.0x_8xb32-coslr-150e_in1k.py': ('MobileNetV2', None, '71.65'),
    'od-mobilenet-v2-1.0x-k1_8xb32-coslr-150e_in1k.py': ('ODMobileNetV2', 1, '74.74'),
    'od-mobilenet-v2-1.0x-k4_8xb32-coslr-150e_in1k.py': ('ODMobileNetV2', 4, '75.29'),
    'mobilenet-v2-0.75x_8xb32-coslr-150e_in1k.py': ('MobileNetV2', None, '69.18'),
    'od-mobilenet-v2-0.75x-k1_8xb32-coslr-150e_in1k.py': ('ODMobileNetV2', 1, '72.71'),
    'od-mobilenet-v2-0.75x-k4_8xb32-coslr-150e_in1k.py': ('ODMobileNetV2', 4, '74.01'),
    'mobilenet-v2-0.5x_8xb32-coslr-150e_in1k.py': ('MobileNetV2', None, '64.30'),
    'od-mobilenet-v2-0.5x-k1_8xb32-coslr-150e_in1k.py': ('ODMobileNetV2', 1, '68.06'),
    'od-mobilenet-v2-0.5x-k4_8xb32-coslr-150e_in1k.py': ('ODMobileNetV2', 4, '70.23'),
}


def load(path):
    require_mmpretrain()
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings
    cfg = Config.fromfile(path)
    import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.default_scope)
    return cfg


def test_the_configs_are_the_ones_listed():
    assert sorted(os.path.basename(p) for p in glob.glob(os.path.join(IMAGENET, '*.py'))) == sorted(RELEASED)


@pytest.mark.parametrize('name', sorted(RELEASED))
def test_imagenet_config_builds_with_the_official_recipe(name):
    cfg = load(os.path.join(IMAGENET, name))
    from mmpretrain.registry import MODELS
    from odconv_mmdet.layers.odconv import ODConv2d
    backbone_type, kernel_num, top1 = RELEASED[name]
    header = open(os.path.join(IMAGENET, name)).read().split('_base_')[0]
    assert f'Official released top-1: {top1}' in header and 'not measured here' in header
    model = MODELS.build(cfg.model)
    assert type(model.backbone).__name__ == backbone_type
    odconvs = [m for m in model.modules() if isinstance(m, ODConv2d)]
    assert (kernel_num is None) == (not odconvs)
    assert all(m.kernel_num == kernel_num and m.attention.fc.in_channels // m.attention.fc.out_channels in (
        16, 17) or m.attention.fc.out_channels == 16 for m in odconvs)  # reduction 1/16, width >= 16
    assert type(model.head).__name__ == 'DropoutLinearClsHead' and model.head.dropout.p == 0.2
    assert model.head.num_classes == 1000
    recipe = MOBILENET_RECIPE if 'mobilenet' in name else RESNET_RECIPE
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.momentum, optimizer.weight_decay) == (
        'SGD', recipe['lr'], 0.9, recipe['weight_decay'])
    assert cfg.train_cfg.max_epochs == recipe['epochs']
    assert cfg.train_dataloader.batch_size * 8 == 256 and cfg.auto_scale_lr.base_batch_size == 256
    schedulers = cfg.param_scheduler if isinstance(cfg.param_scheduler, list) else [cfg.param_scheduler]
    if 'mobilenet' in name:
        assert [(s.type, s.T_max) for s in schedulers] == [('CosineAnnealingLR', 150)]
    else:
        assert [(s.type, s.milestones) for s in schedulers] == [('MultiStepLR', recipe['milestones'])]
    hooks = [h for h in cfg.get('custom_hooks', []) if h['type'] == 'ODConvTemperatureHook']
    if kernel_num is None:
        assert not hooks
    else:
        assert [(h['init_temperature'], h['anneal_epochs']) for h in hooks] == [(30, 10)]


@pytest.mark.parametrize('name, millions', [('resnet50_8xb32-dropout_in1k.py', 25.56),
                                            ('odresnet50-k1_8xb32_in1k.py', 28.64),
                                            ('odresnet50-k4_8xb32_in1k.py', 90.67)])
def test_resnet50_configs_have_the_papers_parameter_counts(name, millions):
    cfg = load(os.path.join(IMAGENET, name))
    from mmpretrain.registry import MODELS
    model = MODELS.build(cfg.model)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == millions


@pytest.mark.parametrize('name, backbone_type', [('resnet18-half_shapes-cls.py', 'ResNet'),
                                                 ('odresnet18-half-k4_shapes-cls.py', 'ODResNet')])
def test_builtin_set_configs_scale_the_recipe_down(name, backbone_type):
    cfg = load(os.path.join(REPO, 'configs', 'shapes_cls', name))
    from mmpretrain.registry import MODELS
    model = MODELS.build(cfg.model)
    assert type(model.backbone).__module__.split('.')[0] in ('mmdet', 'odconv_mmdet')  # loads into mmdet
    assert type(model.backbone).__name__ == backbone_type and model.backbone.base_channels == 32
    assert model.head.num_classes == 10 and model.head.dropout.p == 0.2
    epochs = cfg.train_cfg.max_epochs
    assert cfg.param_scheduler.milestones == [round(epochs * 0.3), round(epochs * 0.6), round(epochs * 0.9)]
    assert cfg.optim_wrapper.optimizer.lr == 0.1 * cfg.train_dataloader.batch_size / 256
    hooks = [(h['init_temperature'], h['anneal_epochs']) for h in cfg.custom_hooks]
    assert hooks == ([(30, epochs / 10)] if backbone_type == 'ODResNet' else [])
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 64, 64)).shape == (2, 10)


CLASSIFICATION_CONFIGS = sorted(glob.glob(os.path.join(IMAGENET, '*.py'))
                                + glob.glob(os.path.join(REPO, 'configs', 'shapes_cls', '*.py')))


@pytest.mark.parametrize('path', CLASSIFICATION_CONFIGS, ids=os.path.basename)
def test_every_pretraining_config_trains_its_batch_norms(path):
    """mmdet's ResNet (and so ODResNet) defaults to norm_eval=True, which keeps every BatchNorm
    at its initial statistics while training: a classifier trained from scratch must not."""
    cfg = load(path)
    from mmpretrain.registry import MODELS
    model = MODELS.build(cfg.model)
    model.train()
    norms = [m for m in model.backbone.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and all(m.training for m in norms)


# the dynamic-conv comparison (issue 31): config -> (layer class, K, attentions)
COMPARISON = {
    'resnet18-quarter_10e_shapes-cls.py': (None, None, None),
    'odresnet18-quarter-k1-spatial_10e_shapes-cls.py': ('ODConv2d', 1, ('spatial',)),
    'odresnet18-quarter-k1-channel_10e_shapes-cls.py': ('ODConv2d', 1, ('channel',)),
    'odresnet18-quarter-k1-filter_10e_shapes-cls.py': ('ODConv2d', 1, ('filter',)),
    'odresnet18-quarter-k4-kernel_10e_shapes-cls.py': ('ODConv2d', 4, ('kernel',)),
    'odresnet18-quarter-k1_10e_shapes-cls.py': ('ODConv2d', 1, ('spatial', 'channel', 'filter')),
    'odresnet18-quarter-k4_10e_shapes-cls.py': ('ODConv2d', 4, ('spatial', 'channel', 'filter', 'kernel')),
    'condconv-resnet18-quarter-k8_10e_shapes-cls.py': ('CondConv2d', 8, ('kernel',)),
    'dyconv-resnet18-quarter-k4_10e_shapes-cls.py': ('DyConv2d', 4, ('kernel',)),
}


@pytest.mark.parametrize('name', sorted(COMPARISON))
def test_comparison_configs_differ_only_in_the_layer(name):
    cfg = load(os.path.join(REPO, 'configs', 'shapes_cls', name))
    from mmpretrain.registry import MODELS
    from odconv_mmdet.layers.odconv import odconv_layers
    layer_type, kernel_num, attentions = COMPARISON[name]
    model = MODELS.build(cfg.model)
    layers = odconv_layers(model)
    assert {type(m).__name__ for m in layers} == ({layer_type} if layer_type else set())
    assert all(m.kernel_num == kernel_num and m.attentions == attentions for m in layers)
    assert len(layers) in (0, 16)  # every conv inside the 8 basic blocks
    assert cfg.train_cfg.max_epochs == 10 and cfg.param_scheduler.milestones == [3, 6, 9]
    assert model.head.in_channels == 128 and model.head.num_classes == 10
    hooks = [(h['init_temperature'], h['anneal_epochs']) for h in cfg.custom_hooks]
    assert hooks == ([(30, 1.0)] if layer_type in ('ODConv2d', 'DyConv2d') else [])
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 64, 64)).shape == (2, 10)


def test_dropout_head_refuses_a_bad_rate():
    require_mmpretrain()
    from odconv_mmdet.classification import DropoutLinearClsHead
    for rate in (1.0, -0.1, '0.2', True):
        with pytest.raises(ValueError, match='dropout_rate must be a number in'):
            DropoutLinearClsHead(num_classes=10, in_channels=8, dropout_rate=rate)


def test_a_user_config_pretrains_on_the_builtin_set_and_its_checkpoint_detects(tmp_path):
    """configs/shapes_cls/odresnet18-half-k4_shapes-cls.py inherits the OD-ResNet-18 ImageNet config:
    mmpretrain's own train tool trains it an epoch on a tiny built-in set and evaluates top-1; its
    checkpoint then loads into mmdet's ODResNet through init_cfg's prefix, computing the same features;
    resumed, the run continues the temperature schedule where it stopped."""
    mmpretrain = require_mmpretrain()
    from odconv_mmdet.datasets.synthetic_classes import generate_classification_dataset
    data = tmp_path / 'cls'
    generate_classification_dataset(str(data), num_train=20, num_val=10, image_size=32)
    work_dir = tmp_path / 'work'
    config = os.path.join(REPO, 'configs', 'shapes_cls', 'odresnet18-half-k4_shapes-cls.py')
    options = [f'{loader}.{key}' for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
               for key in (f'dataset.data_root={data}', 'batch_size=5', 'num_workers=0', 'persistent_workers=False')]
    tool = os.path.join(os.path.dirname(mmpretrain.__file__), '.mim', 'tools', 'train.py')
    result = subprocess.run([sys.executable, tool, config, '--work-dir', str(work_dir), '--cfg-options',
                             'train_cfg.max_epochs=1', *options], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    scalars = [json.loads(line) for line in open(glob.glob(str(work_dir / '*' / 'vis_data' / 'scalars.json'))[0])]
    temperatures = [s['odconv_temperature'] for s in scalars if 'odconv_temperature' in s]
    assert temperatures and all(1 <= t <= 30 for t in temperatures)
    top1 = [s['accuracy/top1'] for s in scalars if 'accuracy/top1' in s]
    assert len(top1) == 1 and 0 <= top1[0] <= 100
    checkpoint = str(work_dir / 'epoch_1.pth')
    # the checkpoint records the temperature of its last iteration (still annealing: 4 of 8 iterations)
    assert 1 < temperatures[-1] < 30
    assert torch.load(checkpoint, map_location='cpu')['meta']['odconv_temperature'] == temperatures[-1]

    cfg = load(config)
    from mmengine.runner import load_checkpoint
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    from mmdet.registry import MODELS as DET_MODELS
    classifier = PRETRAIN_MODELS.build(cfg.model)
    load_checkpoint(classifier, checkpoint, map_location='cpu', strict=True)
    detector_backbone = DET_MODELS.build(dict(
        type='ODResNet', depth=18, base_channels=32, kernel_num=4, out_indices=(0, 1, 2, 3),
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint, prefix='backbone.')))
    detector_backbone.init_weights()
    classifier.eval(), detector_backbone.eval()
    images = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(detector_backbone(images)[-1], classifier.backbone(images)[-1])
    with pytest.raises(ValueError, match=r"prefix='backbone\.'"):  # the prefix left out
        DET_MODELS.build(dict(type='ODResNet', depth=18, base_channels=32, kernel_num=4,
                              init_cfg=dict(type='Pretrained', checkpoint=checkpoint))).init_weights()
    # resumed for a second epoch, the schedule continues from iteration 5 and ends annealed at 8
    resumed = subprocess.run([sys.executable, tool, config, '--work-dir', str(work_dir), '--resume', '--cfg-options',
                              'train_cfg.max_epochs=2', *options], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert 'resumed epoch: 1, iter: 4' in resumed.stdout + resumed.stderr
    final = torch.load(str(work_dir / 'epoch_2.pth'), map_location='cpu')
    assert final['meta']['odconv_temperature'] == 1.0 and final['meta']['iter'] == 8


def test_the_study_command_runs_ci_sized(tmp_path):
    """benchmarks/pretrain_study.py --tiny: both backbones pretrained and detected from, one seed."""
    require_mmpretrain()
    out = tmp_path / 'study.json'
    result = subprocess.run([sys.executable, os.path.join(REPO, 'benchmarks', 'pretrain_study.py'), '--tiny',
                             '--seeds', '0', '--work-dir', str(tmp_path / 'work'), '--out', str(out)],
                            capture_output=True, text=True, timeout=900, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    study = json.load(open(out))
    assert study['tiny'] and study['seeds'] == [0] and study['pretrain_epochs'] == 1
    for kind in ('static', 'odconv'):
        runs = study['runs'][kind]
        assert len(runs['top1']) == len(runs['map']) == 1 and 0 <= runs['top1'][0] <= 100
        assert 0 <= runs['map'][0] <= 1 and runs['pretrain_s'][0] > 0 and runs['detect_s'][0] > 0
        # the detector really started from that run's pretrained backbone
        log = open(glob.glob(str(tmp_path / 'work' / f'detect_{kind}_seed0' / '*' / '*.log'))[0]).read()
        assert re.search(r'load backbone\. in model from: .*pretrain_%s_seed0.*epoch_1\.pth' % kind, log)
    assert set(study['verdict'].values()) <= {'ODConv helps', 'ODConv hurts', 'no clear difference'}
    assert '| ODResNet-18 K = 4 (half width) |' in result.stdout


def test_the_dynamic_convs_study_runs_ci_sized(tmp_path):
    """benchmarks/dynamic_convs_study.py --tiny with two variants: each trained through
    mmpretrain's train tool, sized and timed, and compared by the committed rule."""
    require_mmpretrain()
    out = tmp_path / 'study.json'
    result = subprocess.run([sys.executable, os.path.join(REPO, 'benchmarks', 'dynamic_convs_study.py'), '--tiny',
                             '--seeds', '0', '--variants', 'static', 'dyconv-4x', '--work-dir', str(tmp_path / 'work'),
                             '--out', str(out)], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    study = json.load(open(out))
    assert study['tiny'] and list(study['runs']) == ['static', 'dyconv-4x']
    static, dyconv = study['runs']['static'], study['runs']['dyconv-4x']
    for runs in (static, dyconv):
        assert len(runs['top1']) == len(runs['step_s']) == 1 and 0 <= runs['top1'][0] <= 100
        assert runs['step_s'][0] > 0 and runs['wall_s'][0] > 0
    # 16 convs of 3x3: DyConv 4x has four kernels each plus its attention
    assert dyconv['params'] > 3 * static['params'] and dyconv['madds'] > static['madds']
    assert set(study['verdicts']) == {'dyconv-4x vs static'}
    assert study['verdicts']['dyconv-4x vs static'] in ('higher', 'lower', 'no clear difference')
    log = open(glob.glob(str(tmp_path / 'work' / 'dyconv-4x_seed0' / '*' / '*.log'))[0]).read()
    assert 'odconv_temperature' in log  # DyConv's temperature annealed by the hook
