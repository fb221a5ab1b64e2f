"""Known traps of the pinned stack, handled once in odconv_mmdet.compat."""
import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import _load_checkpoint, load_checkpoint

import odconv_mmdet  # noqa: F401  (applies the fixes)
from odconv_mmdet.compat import UntrustedCheckpointError, safe_load

ROOT = Path(__file__).resolve().parents[1]


def runner_like_checkpoint(path):
    hub = MessageHub.get_instance('compat_test')
    hub.update_scalar('train/loss', 1.25)
    state = {'meta': {'epoch': 3, 'iter': 120, 'seed': np.int64(7), 'mean': np.array([1.0, 2.0])},
             'state_dict': {'conv.weight': torch.ones(2, 3, 1, 1)},
             'message_hub': hub.state_dict()}
    torch.save(state, path)


def test_runner_checkpoints_load_under_torch_weights_only_default(tmp_path):
    path = tmp_path / 'epoch_3.pth'
    runner_like_checkpoint(path)
    with pytest.raises(Exception):  # what mmengine 0.10.7 alone would do under torch >= 2.6
        torch.load(path)
    ckpt = _load_checkpoint(str(path), map_location='cpu')
    assert ckpt['meta']['iter'] == 120 and ckpt['meta']['seed'] == 7
    model = torch.nn.Module()
    model.conv = torch.nn.Conv2d(3, 2, 1, bias=False)
    load_checkpoint(model, str(path), map_location='cpu', strict=True)
    assert torch.equal(model.conv.weight, torch.ones(2, 3, 1, 1))


def test_missing_checkpoint_is_named(tmp_path):
    missing = tmp_path / 'nope.pth'
    with pytest.raises(FileNotFoundError, match='checkpoint file not found: .*nope.pth'):
        _load_checkpoint(str(missing))


# --- weights-only loading: a crafted checkpoint runs no code through any loading path ---


class _RunsCode:
    """Unpickling this calls os.system: what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def crafted_checkpoint(tmp_path):
    path, marker = tmp_path / 'crafted.pth', tmp_path / 'code_ran'
    torch.save({'state_dict': {'conv.weight': torch.ones(2, 3, 1, 1)}, 'meta': {'x': _RunsCode(marker)}}, path)
    return path, marker


def small_model():
    model = torch.nn.Module()
    model.conv = torch.nn.Conv2d(3, 2, 1, bias=False)
    return model


def test_a_crafted_checkpoint_runs_no_code_through_mmengine_loading(tmp_path):
    from mmengine.model import BaseModule
    path, marker = crafted_checkpoint(tmp_path)
    with pytest.raises(UntrustedCheckpointError, match=r"crafted.pth: refused to unpickle.*posix.system.*'trusted:'"):
        _load_checkpoint(str(path))
    with pytest.raises(UntrustedCheckpointError):
        load_checkpoint(small_model(), str(path))

    class Pretrained(BaseModule):
        def __init__(self):
            super().__init__(init_cfg=dict(type='Pretrained', checkpoint=str(path)))
            self.conv = torch.nn.Conv2d(3, 2, 1, bias=False)

    with pytest.raises(UntrustedCheckpointError):
        Pretrained().init_weights()
    assert not marker.exists()


@pytest.mark.parametrize('resume', [False, True])
def test_a_crafted_checkpoint_runs_no_code_through_the_runner(tmp_path, resume):
    from toy_runner import build_runner
    path, marker = crafted_checkpoint(tmp_path)
    runner = build_runner(tmp_path / 'work', max_epochs=1, load_from=str(path), resume=resume)
    with pytest.raises(UntrustedCheckpointError):
        runner.train()
    assert not marker.exists()


def test_a_crafted_checkpoint_runs_no_code_through_the_tools(tmp_path):
    path, marker = crafted_checkpoint(tmp_path)
    config = ROOT / 'configs' / 'shapes' / 'faster-rcnn_odr18-k4_fpn_shapes.py'
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for args in (['convert_official_checkpoint.py', path, tmp_path / 'out.pth'],
                 ['inflate_static_checkpoint.py', path, tmp_path / 'out.pth', '--depth', '18'],
                 ['export_onnx.py', config, tmp_path / 'out.onnx', '--checkpoint', path]):
        result = subprocess.run([sys.executable, str(ROOT / 'tools' / args[0]), *map(str, args[1:])],
                                capture_output=True, text=True, cwd=ROOT, env=env)
        assert result.returncode == 2, (args[0], result.stderr[-2000:])
        assert 'refused to unpickle' in result.stderr and 'pass --trust' in result.stderr, args[0]
        assert not list(tmp_path.glob('out.*'))
    assert not marker.exists()


def test_a_trusted_file_loads_only_by_explicit_opt_in(tmp_path):
    path = tmp_path / 'old_style.pth'
    torch.save({'state_dict': {'conv.weight': torch.ones(2, 3, 1, 1)}, 'args': argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(UntrustedCheckpointError, match='argparse.Namespace'):
        load_checkpoint(small_model(), str(path))
    model = small_model()
    load_checkpoint(model, f'trusted:{path}', strict=True)
    assert torch.equal(model.conv.weight, torch.ones(2, 3, 1, 1))
    assert safe_load(str(path), trusted=True)['args'].lr == 0.1


def test_runner_checkpoints_hold_nothing_outside_the_allow_list(tmp_path):
    from toy_runner import build_runner
    build_runner(tmp_path, max_epochs=1).train()
    path = tmp_path / 'epoch_1.pth'
    allowed = {'mmengine.logging.history_buffer.HistoryBuffer', 'numpy.dtype', 'numpy._core.multiarray.scalar',
               'numpy._core.multiarray._reconstruct', 'numpy.ndarray'}
    assert set(torch.serialization.get_unsafe_globals_in_checkpoint(str(path))) <= allowed
    hub = safe_load(str(path))['message_hub']
    loss = hub['log_scalars']['train/loss']
    assert isinstance(loss, HistoryBuffer) and len(loss.data[0]) == 4  # 8 samples / batch 2
    resumed = build_runner(tmp_path, max_epochs=2, resume=True)
    resumed.train()
    assert resumed.iter == 8


def test_importing_the_plugin_leaves_torch_load_safe(tmp_path):
    path, marker = crafted_checkpoint(tmp_path)
    with pytest.raises(Exception):
        torch.load(path)  # torch's own default, weights_only=True, is untouched
    assert not marker.exists()


def test_the_runner_loads_a_trusted_prefixed_checkpoint(tmp_path):
    from toy_runner import build_runner
    build_runner(tmp_path / 'first', max_epochs=1).train()
    old = safe_load(str(tmp_path / 'first' / 'epoch_1.pth'))
    old['args'] = argparse.Namespace(lr=0.1)  # as a checkpoint of another code base may hold
    path = tmp_path / 'old.pth'
    torch.save(old, path)
    with pytest.raises(UntrustedCheckpointError):
        build_runner(tmp_path / 'refused', max_epochs=1, load_from=str(path)).train()
    runner = build_runner(tmp_path / 'second', max_epochs=1, load_from=f'trusted:{path}')
    runner.train()
    assert runner.iter == 4
