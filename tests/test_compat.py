"""Checkpoint loading with the plugin imported (odconv_mmdet.compat), under each default of a
bare ``torch.load``: weights-only (torch >= 2.6) and full unpickling (torch < 2.6). The rule:
every checkpoint that the stack loads without the plugin still loads, and no load is less safe
than a bare ``torch.load`` on that torch."""
import argparse
import io
import os
import pickletools
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import _load_checkpoint, load_checkpoint

import odconv_mmdet  # noqa: F401  (registers the loaders)
from odconv_mmdet.compat import (FullUnpicklingWarning, UntrustedCheckpointError, safe_load,
                                 torch_loads_weights_only_by_default)

ROOT = Path(__file__).resolve().parents[1]
FORCING = {True: 'TORCH_FORCE_WEIGHTS_ONLY_LOAD', False: 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'}


def _explicit_full_unpickling_loads():
    """Whether ``torch.load(..., weights_only=False)`` still unpickles everything (torch 2.0's
    TORCH_FORCE_WEIGHTS_ONLY_LOAD overrides even that)."""
    buffer = io.BytesIO()
    torch.save(argparse.Namespace(), buffer)
    buffer.seek(0)
    try:
        torch.load(buffer, weights_only=False)
    except Exception:
        return False
    return True


@pytest.fixture
def weights_only_default(monkeypatch):
    """A bare torch.load unpickles weights-only: this torch's default, or set by torch's variable."""
    monkeypatch.delenv(FORCING[False], raising=False)
    if not torch_loads_weights_only_by_default():
        monkeypatch.setenv(FORCING[True], '1')


@pytest.fixture
def full_unpickling_default(monkeypatch):
    """A bare torch.load unpickles everything: this torch's default, or set by torch's variable."""
    monkeypatch.delenv(FORCING[True], raising=False)
    if torch_loads_weights_only_by_default():
        monkeypatch.setenv(FORCING[False], '1')
    assert not torch_loads_weights_only_by_default()


def skip_unless_weights_only_runner_loads():
    if not hasattr(torch.serialization, 'safe_globals'):
        pytest.skip('this torch has no per-call allow-list (torch.serialization.safe_globals, torch >= 2.5): '
                    'a weights-only load cannot build HistoryBuffer or numpy objects')
    if not _explicit_full_unpickling_loads():
        pytest.skip('on this torch TORCH_FORCE_WEIGHTS_ONLY_LOAD also overrides weights_only=False: no opt-in exists')


def runner_like_checkpoint(path):
    hub = MessageHub.get_instance('compat_test')
    hub.update_scalar('train/loss', 1.25)
    state = {'meta': {'epoch': 3, 'iter': 120, 'seed': np.int64(7), 'mean': np.array([1.0, 2.0])},
             'state_dict': {'conv.weight': torch.ones(2, 3, 1, 1)},
             'message_hub': hub.state_dict()}
    torch.save(state, path)


def small_model():
    model = torch.nn.Module()
    model.conv = torch.nn.Conv2d(3, 2, 1, bias=False)
    return model


def test_runner_checkpoints_load_on_this_torch(tmp_path):
    path = tmp_path / 'epoch_3.pth'
    runner_like_checkpoint(path)
    if torch_loads_weights_only_by_default():
        with pytest.raises(Exception):  # what mmengine 0.10.7 alone does under torch >= 2.6
            torch.load(path)
    ckpt = _load_checkpoint(str(path), map_location='cpu')
    assert ckpt['meta']['iter'] == 120 and ckpt['meta']['seed'] == 7
    assert ckpt['message_hub']['log_scalars']['train/loss'].current() == 1.25
    model = small_model()
    load_checkpoint(model, str(path), map_location='cpu', strict=True)
    assert torch.equal(model.conv.weight, torch.ones(2, 3, 1, 1))


@pytest.mark.parametrize('numpy_major', [1, 2])
def test_runner_checkpoints_written_under_either_numpy_load(numpy_major, recwarn):
    """numpy 1 pickles its scalars through numpy.core.multiarray, numpy 2 through numpy._core.multiarray:
    a checkpoint pretrained on the users' stack (numpy 1) loads for detection on numpy 2 and back,
    weights-only where this torch has an allow-list (fixtures: tests/fixtures/make_numpy_checkpoints.py)."""
    path = ROOT / 'tests' / 'fixtures' / f'numpy{numpy_major}_runner_checkpoint.pth'
    with zipfile.ZipFile(path) as archive:
        pickled = archive.read(next(n for n in archive.namelist() if n.endswith('data.pkl')))
    assert (b'numpy._core.multiarray' if numpy_major == 2 else b'numpy.core.multiarray') in pickled
    model = small_model()
    load_checkpoint(model, str(path), map_location='cpu', strict=True)
    assert torch.equal(model.conv.weight, torch.ones(2, 3, 1, 1))
    ckpt = _load_checkpoint(str(path), map_location='cpu')
    assert ckpt['meta']['seed'] == 7 and ckpt['meta']['odconv_temperature'] == 1.5
    assert np.array_equal(ckpt['meta']['mean'], [1.0, 2.0])
    full_unpickling = [w for w in recwarn if issubclass(w.category, FullUnpicklingWarning)]
    # weights-only where torch has a per-call allow-list; else fully unpickled as torch does bare
    assert bool(full_unpickling) == (not hasattr(torch.serialization, 'safe_globals'))


def test_a_weights_only_file_loads_without_a_warning(tmp_path, recwarn):
    path = tmp_path / 'weights.pth'
    torch.save({'state_dict': {'conv.weight': torch.full((2, 3, 1, 1), 2.0)}}, path)
    model = small_model()
    load_checkpoint(model, str(path), strict=True)
    assert torch.equal(model.conv.weight, torch.full((2, 3, 1, 1), 2.0))
    assert not [w for w in recwarn if issubclass(w.category, FullUnpicklingWarning)]


def test_missing_checkpoint_is_named(tmp_path):
    missing = tmp_path / 'nope.pth'
    with pytest.raises(FileNotFoundError, match='checkpoint file not found: .*nope.pth'):
        _load_checkpoint(str(missing))


# --- a crafted checkpoint: refused where torch loads weights-only, loaded as torch does elsewhere ---


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


def test_a_crafted_checkpoint_runs_no_code_through_mmengine_loading(tmp_path, weights_only_default):
    from mmengine.model import BaseModule
    path, marker = crafted_checkpoint(tmp_path)
    with pytest.raises(UntrustedCheckpointError, match=r"crafted.pth: refused to unpickle.*system.*'trusted:'"):
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
def test_a_crafted_checkpoint_runs_no_code_through_the_runner(tmp_path, resume, weights_only_default):
    from odconv_mmdet.testing.toy_runner import build_runner
    path, marker = crafted_checkpoint(tmp_path)
    runner = build_runner(tmp_path / 'work', max_epochs=1, load_from=str(path), resume=resume)
    with pytest.raises(UntrustedCheckpointError):
        runner.train()
    assert not marker.exists()


def test_a_crafted_checkpoint_runs_no_code_through_the_tools(tmp_path, weights_only_default):
    path, marker = crafted_checkpoint(tmp_path)
    config = ROOT / 'configs' / 'shapes' / 'faster-rcnn_odr18-k4_fpn_shapes.py'
    for args in (['model_converters/convert_official_checkpoint.py', path, tmp_path / 'out.pth'],
                 ['model_converters/inflate_static_checkpoint.py', path, tmp_path / 'out.pth', '--depth', '18'],
                 ['deployment/export_onnx.py', config, tmp_path / 'out.onnx', '--checkpoint', path]):
        result = subprocess.run([sys.executable, str(ROOT / 'tools' / args[0]), *map(str, args[1:])],
                                capture_output=True, text=True, cwd=ROOT)
        assert result.returncode == 2, (args[0], result.stderr[-2000:])
        assert 'refused to unpickle' in result.stderr and 'pass --trust' in result.stderr, args[0]
        assert not list(tmp_path.glob('out.*'))
    assert not marker.exists()


def test_where_torch_unpickles_everything_the_plugin_loads_what_torch_loads(tmp_path, full_unpickling_default):
    path, marker = crafted_checkpoint(tmp_path)
    torch.load(path)  # what this torch does without the plugin: the file's code runs
    assert marker.exists()
    marker.unlink()
    with pytest.warns(FullUnpicklingWarning, match=r'crafted.pth: holds objects .*system.*fully unpickled'):
        ckpt = _load_checkpoint(str(path))
    assert marker.exists() and torch.equal(ckpt['state_dict']['conv.weight'], torch.ones(2, 3, 1, 1))

    namespace = tmp_path / 'old_style.pth'
    torch.save({'state_dict': {'conv.weight': torch.ones(2, 3, 1, 1)}, 'args': argparse.Namespace(lr=0.1)},
               namespace)
    with pytest.warns(FullUnpicklingWarning, match='Namespace'):
        assert _load_checkpoint(str(namespace))['args'].lr == 0.1


def test_a_trusted_file_loads_only_by_explicit_opt_in(tmp_path, weights_only_default):
    skip_unless_weights_only_runner_loads()
    path = tmp_path / 'old_style.pth'
    torch.save({'state_dict': {'conv.weight': torch.ones(2, 3, 1, 1)}, 'args': argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(UntrustedCheckpointError, match='argparse.Namespace'):
        load_checkpoint(small_model(), str(path))
    model = small_model()
    load_checkpoint(model, f'trusted:{path}', strict=True)
    assert torch.equal(model.conv.weight, torch.ones(2, 3, 1, 1))
    assert safe_load(str(path), trusted=True)['args'].lr == 0.1


def pickled_globals(path):
    """Every module.name a torch checkpoint's pickle references (torch.save writes protocol 2,
    whose GLOBAL opcode names them), read off the opcodes without unpickling."""
    with zipfile.ZipFile(path) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith('data.pkl')))
    return {arg.replace(' ', '.') for op, arg, _ in pickletools.genops(data) if op.name == 'GLOBAL'}


def test_runner_checkpoints_hold_nothing_outside_the_allow_list(tmp_path):
    from odconv_mmdet.testing.toy_runner import build_runner
    build_runner(tmp_path, max_epochs=1).train()
    path = tmp_path / 'epoch_1.pth'
    numpy_functions = np.float64(0).__reduce__()[0].__module__  # numpy.core / numpy._core.multiarray
    allowed = {'mmengine.logging.history_buffer.HistoryBuffer', 'numpy.dtype', 'numpy.ndarray',
               f'{numpy_functions}.scalar', f'{numpy_functions}._reconstruct', 'collections.OrderedDict'}
    # torch's own weights-only set: tensor rebuilding, and bytes in protocol 2 (_codecs.encode)
    held = {g for g in pickled_globals(path) if not g.startswith('torch.') and g != '_codecs.encode'}
    assert held and held <= allowed, held - allowed
    hub = safe_load(str(path))['message_hub']
    loss = hub['log_scalars']['train/loss']
    assert isinstance(loss, HistoryBuffer) and len(loss.data[0]) == 4  # 8 samples / batch 2
    resumed = build_runner(tmp_path, max_epochs=2, resume=True)
    resumed.train()
    assert resumed.iter == 8


def test_importing_the_plugin_leaves_torch_load_safe(tmp_path, weights_only_default):
    path, marker = crafted_checkpoint(tmp_path)
    with pytest.raises(Exception):
        torch.load(path)  # torch's own default, weights_only=True, is untouched
    assert not marker.exists()


def test_the_runner_loads_a_trusted_prefixed_checkpoint(tmp_path, weights_only_default):
    from odconv_mmdet.testing.toy_runner import build_runner
    skip_unless_weights_only_runner_loads()
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
