"""The command-line tools end to end, in subprocesses, on a tiny generated shapes dataset."""
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from odconv_mmdet.datasets import generate_shapes_dataset

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ROOT / 'configs' / 'shapes'


def run(*args, timeout=600, env=None):
    full_env = dict(os.environ, OMP_NUM_THREADS='2')
    full_env.update(env or {})
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, env=full_env)


def tool(name, *args, **kwargs):
    return run(sys.executable, ROOT / 'tools' / name, *args, **kwargs)


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('data') / 'shapes'
    generate_shapes_dataset(root, num_train=16, num_val=8, seed=3)
    return root


def tiny_config(tmp_path, data_root, base='faster-rcnn_odr18-k4_fpn_shapes.py', extra='', batch_size=4):
    path = tmp_path / f'tiny_{base}'
    path.write_text(f'''
_base_ = [{str(SHAPES / base)!r}]
data_root = {str(data_root) + '/'!r}
train_dataloader = dict(batch_size={batch_size}, dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=2, val_interval=100)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=1)]
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=3), logger=dict(interval=1))
custom_hooks = [dict(type='ODConvTemperatureHook', init_temperature=30, anneal_epochs=2)]
{extra}
''')
    return path


def logged_temperatures(text):
    return [float(t) for t in re.findall(r'odconv_temperature: ([0-9.]+)', text)]


# By hand from the reference page: T0 = 30 annealed over 8 iterations, after iterations 1..8,
# T = 1 + 29 * (8 - i) / 8.
T0_30_OVER_8 = [26.375, 22.75, 19.125, 15.5, 11.875, 8.25, 4.625, 1.0]


def test_train_resume_and_test_faster_rcnn(tmp_path, tiny_data):
    cfg = tiny_config(tmp_path, tiny_data)
    work = tmp_path / 'work'
    first = tool('train.py', cfg, '--work-dir', work, '--cfg-options', 'train_cfg.max_epochs=1')
    assert first.returncode == 0, first.stderr[-3000:]
    assert (work / 'epoch_1.pth').is_file()
    # 16 images / batch 4 = 4 iterations per epoch; annealing over 2 epochs = 8 iterations.
    assert logged_temperatures(first.stdout + first.stderr) == pytest.approx(
        T0_30_OVER_8[:4], abs=1e-4)

    resumed = tool('train.py', cfg, '--work-dir', work, '--resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    out = resumed.stdout + resumed.stderr
    assert 'resumed epoch: 1, iter: 4' in out
    assert logged_temperatures(out) == pytest.approx(T0_30_OVER_8[4:], abs=1e-4)
    ckpt = torch.load(work / 'epoch_2.pth', weights_only=False)
    assert ckpt['meta']['odconv_temperature'] == pytest.approx(1.0)

    tested = tool('test.py', cfg, work / 'epoch_2.pth', '--work-dir', tmp_path / 'test')
    assert tested.returncode == 0, tested.stderr[-3000:]
    metrics = json.loads((tmp_path / 'test' / 'test_metrics.json').read_text())
    assert {'coco/bbox_mAP', 'coco/bbox_mAP_50'} <= set(metrics)
    assert 0.0 <= metrics['coco/bbox_mAP'] <= 1.0

    picture = tmp_path / 'pred.png'
    drawn = run(sys.executable, ROOT / 'demo' / 'image_demo.py', cfg, work / 'epoch_2.pth',
                tiny_data / 'val' / '000000.png', '--out', picture, '--score-thr', '0.0')
    assert drawn.returncode == 0, drawn.stderr[-3000:]
    assert picture.is_file() and picture.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert 'detections with score >= 0.0' in drawn.stdout


def test_mask_rcnn_trains_and_reports_segm_map(tmp_path, tiny_data):
    cfg = tiny_config(tmp_path, tiny_data, base='mask-rcnn_odr18-k4_fpn_shapes.py',
                      extra="val_evaluator = dict(ann_file=data_root + 'annotations/val.json', metric=['bbox', 'segm'])\n"
                            'test_evaluator = val_evaluator')
    work = tmp_path / 'work'
    trained = tool('train.py', cfg, '--work-dir', work, '--cfg-options', 'train_cfg.max_epochs=1')
    assert trained.returncode == 0, trained.stderr[-3000:]
    tested = tool('test.py', cfg, work / 'epoch_1.pth', '--work-dir', work)
    assert tested.returncode == 0, tested.stderr[-3000:]
    metrics = json.loads((work / 'test_metrics.json').read_text())
    assert {'coco/bbox_mAP', 'coco/segm_mAP'} <= set(metrics)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return str(s.getsockname()[1])


def dist_tool(name, *args):
    # A free port of its own (the scripts default to mmdet's fixed 29500)
    # and this interpreter (the scripts default to .venv's, which is not the users' stack's)
    return run('bash', ROOT / 'tools' / name, *args,
               env=dict(OMP_NUM_THREADS='1', PORT=free_port(), PYTHON=sys.executable))


def assert_every_rank_exited_cleanly(result):
    # torchrun returns 0 only when every rank did; the abort this guards against printed this
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'terminate called' not in result.stdout + result.stderr


@pytest.fixture(scope='module')
def two_process_training(tmp_path_factory, tiny_data):
    tmp_path = tmp_path_factory.mktemp('dist')
    cfg = tiny_config(tmp_path, tiny_data, extra=(
        "custom_imports = dict(imports=['odconv_mmdet', 'odconv_mmdet.testing.hooks'], allow_failed_imports=False)\n"
        "custom_hooks = [dict(type='ODConvTemperatureHook', init_temperature=30, anneal_epochs=2,"
        " attention_stats_interval=2), dict(type='DumpWeightsHook')]\n"), batch_size=2)
    work = tmp_path / 'work'
    result = dist_tool('dist_train.sh', cfg, 2, '--work-dir', work, '--cfg-options', 'train_cfg.max_epochs=1')
    return cfg, work, result


def test_two_process_gloo_training_keeps_ranks_identical(two_process_training):
    cfg, work, result = two_process_training
    assert_every_rank_exited_cleanly(result)
    dumps = [torch.load(work / f'weights_rank{r}.pth') for r in (0, 1)]
    assert all(d['world_size'] == 2 and d['wrapped'] for d in dumps)
    w0, w1 = dumps[0]['params'], dumps[1]['params']
    assert w0.keys() == w1.keys()
    for key in w0:
        assert torch.equal(w0[key], w1[key]), key
    # 16 images over 2 ranks with batch 2: 4 iterations each; the temperature schedule saw them all.
    assert logged_temperatures(result.stdout + result.stderr)[:4] == pytest.approx(
        T0_30_OVER_8[:4], abs=1e-4)
    # the log file was flushed and closed before the hard exit: its last record is there
    log_files = list(work.glob('*/*.log'))
    assert len(log_files) == 1
    log = log_files[0].read_text()
    assert 'Saving checkpoint at 1 epochs' in log
    # attention statistics every 2nd iteration, per stage, through the DDP wrapper
    for stage in ('layer1', 'layer2', 'layer3', 'layer4'):
        for key in ('kernel_entropy', 'channel_spread', 'filter_spread'):
            values = [float(v) for v in re.findall(rf'odconv_attention/backbone\.{stage}/{key}: ([0-9.]+)', log)]
            assert values, (stage, key)
            if key == 'kernel_entropy':
                assert all(0 <= v <= 1.3863 for v in values)


def test_two_process_test_tool_exits_zero_on_every_rank(two_process_training, tmp_path):
    cfg, work, trained = two_process_training
    assert_every_rank_exited_cleanly(trained)
    result = dist_tool('dist_test.sh', cfg, work / 'epoch_1.pth', 2, '--work-dir', tmp_path)
    assert_every_rank_exited_cleanly(result)
    metrics = json.loads((tmp_path / 'test_metrics.json').read_text())
    assert 0.0 <= metrics['coco/bbox_mAP'] <= 1.0


def test_two_nodes_agree_on_the_default_port(two_process_training, tmp_path):
    """NNODES=2 on one machine, no PORT given: both "nodes" take the fixed default port and
    form one group of two processes."""
    cfg, work, trained = two_process_training
    assert_every_rank_exited_cleanly(trained)
    env = dict(os.environ, OMP_NUM_THREADS='1', NNODES='2', MASTER_ADDR='127.0.0.1', PYTHON=sys.executable)
    env.pop('PORT', None)
    nodes = [subprocess.Popen(['bash', str(ROOT / 'tools' / 'dist_test.sh'), str(cfg), str(work / 'epoch_1.pth'), '1',
                               '--work-dir', str(tmp_path)], cwd=ROOT, env=dict(env, NODE_RANK=str(rank)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for rank in (0, 1)]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    for node, output in zip(nodes, outputs):
        assert node.returncode == 0, output[-3000:]
    assert 'GPU number: 2' in outputs[0]  # mmengine's environment line: a world of two
    assert 0.0 <= json.loads((tmp_path / 'test_metrics.json').read_text())['coco/bbox_mAP'] <= 1.0


@pytest.mark.parametrize('script', ['dist_train.sh', 'dist_test.sh'])
def test_dist_scripts_default_to_a_fixed_port_that_port_overrides(tmp_path, script):
    stub = tmp_path / 'python'
    stub.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    stub.chmod(0o755)
    args = ['cfg.py', '1'] if script == 'dist_train.sh' else ['cfg.py', 'ckpt.pth', '1']
    default = run('bash', ROOT / 'tools' / script, *args, env=dict(PYTHON=str(stub), PORT=''))
    assert default.returncode == 0, default.stderr
    assert '--master_port=29500' in default.stdout.splitlines()
    chosen = run('bash', ROOT / 'tools' / script, *args, env=dict(PYTHON=str(stub), PORT='29611'))
    assert '--master_port=29611' in chosen.stdout.splitlines()


@pytest.mark.parametrize('script, tool_args', [
    ('slurm_train.sh', ['train.py', 'cfg.py', '--work-dir=work', '--launcher=slurm', '--amp']),
    ('slurm_test.sh', ['test.py', 'cfg.py', 'work', '--launcher=slurm', '--amp']),
])
def test_slurm_scripts_build_mmdets_srun_command(tmp_path, script, tool_args):
    stub_dir = tmp_path / 'bin'
    stub_dir.mkdir()
    (stub_dir / 'srun').write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$SRUN_LOG"\n'
                                   'echo "PYTHONPATH=$PYTHONPATH" >> "$SRUN_LOG"\n')
    (stub_dir / 'srun').chmod(0o755)
    log = tmp_path / 'srun.log'
    env = dict(PATH=f'{stub_dir}{os.pathsep}{os.environ["PATH"]}', SRUN_LOG=str(log), GPUS='16', PYTHONPATH='/site',
               GPUS_PER_NODE='8', SRUN_ARGS='--quotatype=auto --mem=0')
    result = run('bash', ROOT / 'tools' / script, 'part', 'od', 'cfg.py', 'work', '--amp', env=env)
    assert result.returncode == 0, result.stderr
    args = log.read_text().splitlines()
    assert args[:12] == ['-p', 'part', '--job-name=od', '--gres=gpu:8', '--ntasks=16', '--ntasks-per-node=8',
                         '--cpus-per-task=5', '--kill-on-bad-exit=1', '--quotatype=auto', '--mem=0', 'python', '-u']
    assert args[12:] == [str(ROOT / 'tools' / tool_args[0])] + tool_args[1:] + [f'PYTHONPATH={ROOT}:/site']
    missing = run('bash', ROOT / 'tools' / script, 'part', 'od', env=env)
    assert missing.returncode == 2 and 'usage:' in missing.stderr


def test_test_tool_draws_every_image_into_show_dir(two_process_training, tmp_path, tiny_data):
    cfg, work, trained = two_process_training
    assert_every_rank_exited_cleanly(trained)
    result = tool('test.py', cfg, work / 'epoch_1.pth', '--work-dir', tmp_path, '--show-dir', 'pictures')
    assert result.returncode == 0, result.stderr[-3000:]
    # mmdet's convention: relative to WORK_DIR/TIMESTAMP; one picture per val image, named as it
    pictures = list(tmp_path.glob('*/pictures/*'))
    val_images = json.loads((tiny_data / 'annotations' / 'val.json').read_text())['images']
    assert sorted(p.name for p in pictures) == sorted(Path(i['file_name']).name for i in val_images)
    assert f'pictures: {pictures[0].parent}' in result.stdout
    import cv2
    picture = cv2.imread(str(pictures[0]))
    assert picture is not None and picture.shape[2] == 3 and picture.shape[0] > 0


def test_test_tool_show_without_a_display_says_so(two_process_training, tmp_path):
    cfg, work, _ = two_process_training
    env = dict(os.environ)
    env.pop('DISPLAY', None)
    result = subprocess.run([sys.executable, str(ROOT / 'tools' / 'test.py'), str(cfg), str(work / 'epoch_1.pth'),
                             '--work-dir', str(tmp_path), '--show'], capture_output=True, text=True, cwd=ROOT,
                            env=env, timeout=300)
    assert result.returncode == 2
    assert '--show needs a display' in result.stderr and '--show-dir' in result.stderr


def test_draw_attention_writes_a_picture_and_the_values(two_process_training, tmp_path, tiny_data):
    cfg, work, trained = two_process_training
    assert_every_rank_exited_cleanly(trained)
    image = sorted((tiny_data / 'val').glob('*.png'))[0]
    out, values = tmp_path / 'attention.png', tmp_path / 'attention.json'
    result = tool('analysis_tools/draw_attention.py', cfg, work / 'epoch_1.pth', image, '--out', out, '--json', values)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(values.read_text())
    # the checkpoint's temperature: the hook annealed 30 -> 1 over 2 epochs; after 1 epoch of
    # 4 iterations (of 8) T = 1 + 29 * 4 / 8
    assert data['temperature'] == pytest.approx(15.5)
    layers = data['layers']
    assert len(layers) == 16  # ODResNet-18: two 3x3 ODConvs in each of 8 blocks
    for name, v in layers.items():
        assert name.startswith('backbone.layer')
        assert len(v['kernel']) == 4 and sum(v['kernel']) == pytest.approx(1.0, abs=1e-5)
        assert len(v['spatial']) == 3 and all(0 < a < 1 for row in v['spatial'] for a in row)
    import cv2
    picture = cv2.imread(str(out))
    assert picture is not None and picture.shape[0] > 300 and picture.shape[1] > 300
    assert f'16 ODConv layers at T = 15.5; saved {out}' in result.stdout


FAILING_RANK = ("custom_imports = dict(imports=['odconv_mmdet', 'odconv_mmdet.testing.hooks'], allow_failed_imports=False)\n"
                "custom_hooks = [dict(type='FailOnRankHook', rank=1)]\n")


def test_two_process_training_exits_nonzero_when_a_rank_fails(tmp_path, tiny_data):
    cfg = tiny_config(tmp_path, tiny_data, extra=FAILING_RANK, batch_size=2)
    result = dist_tool('dist_train.sh', cfg, 2, '--work-dir', tmp_path / 'work')
    assert result.returncode != 0
    assert 'rank 1 fails on purpose' in result.stdout + result.stderr


def test_two_process_test_tool_exits_nonzero_when_a_rank_fails(two_process_training, tmp_path, tiny_data):
    _, work, _ = two_process_training
    cfg = tiny_config(tmp_path, tiny_data, extra=FAILING_RANK)
    result = dist_tool('dist_test.sh', cfg, work / 'epoch_1.pth', 2, '--work-dir', tmp_path / 'test')
    assert result.returncode != 0
    assert 'rank 1 fails on purpose' in result.stdout + result.stderr
    assert not (tmp_path / 'test' / 'test_metrics.json').exists()


def test_bad_config_path_is_named(tmp_path):
    result = tool('train.py', tmp_path / 'nope.py')
    assert result.returncode == 2
    assert 'config file not found' in result.stderr and 'nope.py' in result.stderr


def test_missing_data_directory_is_named(tmp_path):
    cfg = tiny_config(tmp_path, tmp_path / 'no_such_data')
    result = tool('train.py', cfg, '--work-dir', tmp_path / 'work')
    assert result.returncode == 2
    assert 'data directory not found' in result.stderr and 'no_such_data' in result.stderr
    assert not (tmp_path / 'work').exists() or not any((tmp_path / 'work').iterdir())


def test_broken_annotation_file_is_named(tmp_path, tiny_data):
    broken = tmp_path / 'broken'
    generate_shapes_dataset(broken, num_train=2, num_val=2, seed=1)
    (broken / 'annotations' / 'train.json').write_text('{"images": [')
    cfg = tiny_config(tmp_path, broken)
    result = tool('train.py', cfg, '--work-dir', tmp_path / 'work')
    assert result.returncode == 2
    assert 'annotation file is not valid JSON' in result.stderr and 'train.json' in result.stderr


def test_missing_checkpoint_for_test_is_named(tmp_path, tiny_data):
    cfg = tiny_config(tmp_path, tiny_data)
    result = tool('test.py', cfg, tmp_path / 'missing.pth')
    assert result.returncode == 2 and 'checkpoint not found' in result.stderr
