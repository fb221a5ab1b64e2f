"""Workarounds for known traps of the pinned stack, applied once on ``import odconv_mmdet``.

torch >= 2.6 made ``torch.load(weights_only=True)`` the default, but mmengine 0.10.7 calls
``torch.load(filename)`` for local files, and the checkpoints its own Runner writes (optimizer
state, message hub, numpy scalars in meta) are then refused on resume, test or ``load_from``.
We re-register mmengine's loader for local paths (its documented extension point,
``CheckpointLoader.register_scheme``) with ``weights_only=False``, which is what mmengine
meant: a local checkpoint named by the user is trusted, as before torch 2.6.
"""
import os.path as osp

import torch
from mmengine.runner.checkpoint import CheckpointLoader


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename, map_location=None):
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file not found: {filename}')
    return torch.load(filename, map_location=map_location, weights_only=False)
