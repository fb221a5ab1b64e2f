"""mmdet's own tools (shipped in its installed package under .mim/tools), run as a user runs
them on this project's main-job config, and the main job's training-curve picture."""
import json
import re
import sys
from pathlib import Path

import pytest
from mmdet import __file__ as mmdet_init

from .test_tools_e2e import run, tiny_config, tiny_data, tool  # noqa: F401  (tiny_data: a fixture)

MMDET_TOOLS = Path(mmdet_init).parent / '.mim' / 'tools'


def mmdet_tool(name, *args):
    return run(sys.executable, MMDET_TOOLS / name, *args)


@pytest.fixture(scope='module')
def trained(tmp_path_factory, tiny_data):  # noqa: F811
    """The main job's config on the tiny set: one epoch with the temperature hook, evaluated."""
    tmp_path = tmp_path_factory.mktemp('main_job')
    cfg = tiny_config(tmp_path, tiny_data, extra='train_cfg = dict(max_epochs=1, val_interval=1)\n')
    work = tmp_path / 'work'
    result = tool('train.py', cfg, '--work-dir', work)
    assert result.returncode == 0, result.stderr[-3000:]
    return cfg, work


def test_mmdet_test_tool_evaluates_the_main_job_checkpoint(trained, tmp_path):
    cfg, work = trained
    result = mmdet_tool('test.py', cfg, work / 'epoch_1.pth', '--work-dir', tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r'coco/bbox_mAP: [0-9.]+', result.stdout + result.stderr)


def test_mmdet_get_flops_against_ours(trained):
    """mmengine's counter (mmdet's tool) traces the model and counts the ops it knows; it does
    not count the kernel mixing (aten::mm) or norms, and counts ODConv's conv as the matmul the
    traced layer runs. Same parameters; totals within 10 % of ours (docs/usage.md explains)."""
    cfg, _ = trained
    theirs = mmdet_tool('analysis_tools/get_flops.py', cfg, '--num-images', '2')
    assert theirs.returncode == 0, theirs.stderr[-3000:]
    flops = float(re.search(r'Flops: ([0-9.]+)G', theirs.stdout).group(1))
    params = float(re.search(r'Params: ([0-9.]+)M', theirs.stdout).group(1))
    ours = tool('analysis_tools/get_flops.py', cfg, '--shape', '128', '128')
    assert ours.returncode == 0, ours.stderr[-3000:]
    total = float(re.search(r'total\s+([0-9.]+) G', ours.stdout).group(1))
    our_params = float(re.search(r'parameters: ([0-9.]+) M', ours.stdout).group(1))
    assert params == pytest.approx(our_params, abs=1e-3)
    assert abs(flops - total) / total < 0.10


def test_mmdet_analyze_logs_plots_the_temperature(trained, tmp_path):
    _, work = trained
    scalars = next(work.glob('*/vis_data/scalars.json'))
    temperatures = [r['odconv_temperature'] for r in map(json.loads, scalars.read_text().splitlines())
                    if 'odconv_temperature' in r]
    assert temperatures == pytest.approx([26.375, 22.75, 19.125, 15.5])  # T0 = 30 over 8 iterations
    out = tmp_path / 'temperature.png'
    result = mmdet_tool('analysis_tools/analyze_logs.py', 'plot_curve', scalars, '--keys', 'odconv_temperature',
                        'loss', '--out', out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_mmdet_browse_dataset_draws_every_training_image(trained, tmp_path):
    cfg, _ = trained
    result = mmdet_tool('analysis_tools/browse_dataset.py', cfg, '--output-dir', tmp_path, '--not-show')
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list(tmp_path.glob('*.png'))) == 16


def test_training_curves_picture_of_the_main_job(trained, tmp_path):
    _, work = trained
    out = tmp_path / 'curves.png'
    result = tool('analysis_tools/plot_training_curves.py', work, '--out', out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert '(loss, odconv_temperature, coco/bbox_mAP)' in result.stdout
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    empty = tool('analysis_tools/plot_training_curves.py', tmp_path)
    assert empty.returncode != 0 and 'no */vis_data/scalars.json' in empty.stderr
