"""Known traps of the pinned stack, handled once in odconv_mmdet.compat."""
import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.runner.checkpoint import _load_checkpoint, load_checkpoint

import odconv_mmdet  # noqa: F401  (applies the fixes)


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
