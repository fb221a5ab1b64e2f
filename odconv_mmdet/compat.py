"""Safe checkpoint loading for the pinned stack, set up once on ``import odconv_mmdet``.

torch >= 2.6 loads checkpoints with ``weights_only=True`` by default: unpickling may then build
only tensors, plain containers and explicitly allowed types, so a crafted file cannot run code.
mmengine 0.10.7 calls ``torch.load(filename)`` for local files, and the checkpoints its own
Runner writes hold more than that: numpy scalars (``eta`` in the message hub) and the message
hub's ``HistoryBuffer`` objects, whose default pickle also references their statistics methods
through ``builtins.getattr``, which no allow-list can admit safely.

So, without switching the check off:

* ``HistoryBuffer`` pickles through a reducer (``copyreg``) as ``HistoryBuffer(log, counts,
  max_length)`` of plain lists: checkpoints written after this import hold nothing unsafe.
* mmengine's loader for local files (its extension point ``CheckpointLoader.register_scheme``)
  loads with ``weights_only=True`` under ``RUNNER_CHECKPOINT_GLOBALS``, the types a Runner
  checkpoint holds, allowed for that call only (``torch.serialization.safe_globals``).
* A file that needs more (a checkpoint written without this plugin, say) is refused with an
  error that names the opt-in for a file you trust: prefix its path with ``trusted:``
  (``load_from='trusted:work_dirs/old/epoch_12.pth'``), which loads it with full unpickling.
"""
import copyreg
import os.path as osp
import pickle

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

TRUSTED_PREFIX = 'trusted:'


def _numpy_globals():
    """What numpy arrays and scalars of the usual dtypes unpickle through (no code runs)."""
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    dtypes = [type(np.dtype(name)) for name in ('float64', 'float32', 'float16', 'int64', 'int32', 'int16',
                                                 'int8', 'uint8', 'bool')]
    return [multiarray.scalar, multiarray._reconstruct, np.ndarray, np.dtype, *dtypes]


RUNNER_CHECKPOINT_GLOBALS = [HistoryBuffer, *_numpy_globals()]


class UntrustedCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds objects that loading with ``weights_only=True`` does not build."""


def _reduce_history_buffer(buffer):
    return HistoryBuffer, (buffer._log_history.tolist(), buffer._count_history.tolist(), buffer.max_length)


copyreg.pickle(HistoryBuffer, _reduce_history_buffer)


def safe_load(filename, map_location=None, trusted=False, opt_in=f'prefix its path with {TRUSTED_PREFIX!r}'):
    """``torch.load`` with ``weights_only=True`` and the Runner-checkpoint allow-list; with
    ``trusted=True`` a full unpickling (only for a file you trust). ``opt_in`` is how the
    caller's user asks for that, named in the error."""
    if trusted:
        return torch.load(filename, map_location=map_location, weights_only=False)
    try:
        with torch.serialization.safe_globals(RUNNER_CHECKPOINT_GLOBALS):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        allowed = {f'{t.__module__}.{t.__qualname__}' for t in RUNNER_CHECKPOINT_GLOBALS}
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(filename) if osp.isfile(filename) else []
        unsafe = [g for g in unsafe if g not in allowed]
        raise UntrustedCheckpointError(
            f'{filename}: refused to unpickle, it holds objects that a weights-only load does not build '
            f'({", ".join(unsafe) or e}). Unpickling them can run arbitrary code. If you trust this file, '
            f'{opt_in}.') from None


def _checked_path(filename):
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file not found: {filename}')
    return filename


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename, map_location=None):
    return safe_load(_checked_path(filename), map_location)


@CheckpointLoader.register_scheme(prefixes=TRUSTED_PREFIX, force=True)
def load_from_trusted_local(filename, map_location=None):
    return safe_load(_checked_path(filename[len(TRUSTED_PREFIX):]), map_location, trusted=True)
