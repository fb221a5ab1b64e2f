"""Checkpoint loading that is as safe as torch allows, on every torch the plugin supports.

This file is the one place that decides by torch's and numpy's features (probed, never by
version strings). The rule, with the plugin imported:

* every checkpoint that the same stack loads without the plugin still loads;
* no load is less safe than a bare ``torch.load`` on that torch.

mmengine 0.10.7 loads local files with a bare ``torch.load(filename)``. Since torch 2.6 that
unpickles weights-only: only tensors, plain containers and allowed types, so a crafted file
cannot run code. The checkpoints mmengine's own Runner writes hold more than that: numpy scalars
and arrays, and the message hub's ``HistoryBuffer`` objects, whose default pickle also references
their statistics methods through ``builtins.getattr``, which no allow-list can admit safely.
So, without switching the check off:

* ``HistoryBuffer`` pickles through a reducer (``copyreg``) as ``HistoryBuffer(log, counts,
  max_length)`` of plain lists: checkpoints written after this import hold nothing unsafe.
* mmengine's loader for local files (its extension point ``CheckpointLoader.register_scheme``)
  loads with ``weights_only=True``, with ``RUNNER_CHECKPOINT_GLOBALS``, the types a Runner
  checkpoint holds, allowed for that call only where torch can (``torch.serialization.safe_globals``,
  torch >= 2.5); numpy's pickling functions under both numpy majors' module names, where torch
  takes aliases, so a checkpoint written under numpy 1 loads under numpy 2 and back.
* A file that needs more is then loaded the way a bare ``torch.load`` loads it on this torch:
  refused, where that is weights-only (torch >= 2.6), with an error naming the opt-in for a file
  you trust (prefix its path with ``trusted:``); fully unpickled, with a
  :class:`FullUnpicklingWarning`, where torch unpickles everything by default (torch < 2.6, or
  ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``).
"""
import copyreg
import io
import os.path as osp
import pickle
import warnings
from contextlib import nullcontext

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

TRUSTED_PREFIX = 'trusted:'


def _numpy_globals():
    """What numpy arrays and scalars of the usual dtypes unpickle through (no code runs). The
    functions are taken from numpy's own pickles, so their module (``numpy.core`` in numpy 1,
    ``numpy._core`` in numpy 2) is the one this numpy writes and reads."""
    scalar = np.float64(0).__reduce__()[0]
    reconstruct = np.zeros(1).__reduce__()[0]
    dtypes = [type(np.dtype(name)) for name in ('float64', 'float32', 'float16', 'int64', 'int32', 'int16',
                                                 'int8', 'uint8', 'bool')]
    return [scalar, reconstruct, np.ndarray, np.dtype, *dtypes, *_under_the_other_numpys_name(scalar, reconstruct)]


def _under_the_other_numpys_name(*functions):
    """The same functions under the module name the other numpy major version pickles them with
    (``numpy.core`` <-> ``numpy._core``), so that a checkpoint written under numpy 1 (the users'
    stack) loads under numpy 2 and back. As ``(function, name)`` pairs, where torch's allow-list
    takes them (probed); none where it does not: such a torch then loads as it would bare."""
    if not hasattr(torch.serialization, 'safe_globals'):
        return []
    module = functions[0].__module__
    other = module.replace('numpy._core', 'numpy.core') if module.startswith('numpy._core.') \
        else module.replace('numpy.core', 'numpy._core')
    pairs = [(f, f'{other}.{f.__name__}') for f in functions]
    try:
        from torch import _weights_only_unpickler  # private, hence probed: any failure means no pairs
        with torch.serialization.safe_globals(pairs):
            taken = _weights_only_unpickler._get_user_allowed_globals()
        return pairs if all(taken.get(name) is f for f, name in pairs) else []
    except Exception:
        return []


RUNNER_CHECKPOINT_GLOBALS = [HistoryBuffer, *_numpy_globals()]


class UntrustedCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds objects that loading with ``weights_only=True`` does not build."""


class FullUnpicklingWarning(UserWarning):
    """A checkpoint was fully unpickled because this torch's own default does so."""


class _WeightsOnlyProbe:
    """A harmless object outside every allow-list: what a bare ``torch.load`` does with it tells
    this torch's default."""


def torch_loads_weights_only_by_default():
    """Whether a bare ``torch.load(f)`` unpickles weights-only here, as decided by the torch
    version and its ``TORCH_FORCE_(NO_)WEIGHTS_ONLY_LOAD`` variables (probed on each call, so a
    variable set at run time counts)."""
    buffer = io.BytesIO()
    torch.save(_WeightsOnlyProbe(), buffer)
    buffer.seek(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # torch 2.4 / 2.5 warn when weights_only is left out
        try:
            torch.load(buffer)
        except pickle.UnpicklingError:
            return True
    return False


def _runner_types_allowed():
    """The Runner-checkpoint allow-list for one load, where torch has a per-call allow-list."""
    if hasattr(torch.serialization, 'safe_globals'):
        return torch.serialization.safe_globals(RUNNER_CHECKPOINT_GLOBALS)
    return nullcontext()


def _objects_outside_the_allow_list(filename, error):
    if not (hasattr(torch.serialization, 'get_unsafe_globals_in_checkpoint') and osp.isfile(filename)):
        return str(error).rsplit('WeightsUnpickler error: ', 1)[-1]  # torch < 2.5 names the first one
    allowed = {t[1] if isinstance(t, tuple) else f'{t.__module__}.{t.__qualname__}' for t in RUNNER_CHECKPOINT_GLOBALS}
    unsafe = [g for g in torch.serialization.get_unsafe_globals_in_checkpoint(filename) if g not in allowed]
    return ', '.join(unsafe) or str(error)


def _reduce_history_buffer(buffer):
    return HistoryBuffer, (buffer._log_history.tolist(), buffer._count_history.tolist(), buffer.max_length)


copyreg.pickle(HistoryBuffer, _reduce_history_buffer)


def safe_load(filename, map_location=None, trusted=False, opt_in=f'prefix its path with {TRUSTED_PREFIX!r}'):
    """``torch.load`` weights-only with the Runner-checkpoint allow-list; a file that needs more
    loads as a bare ``torch.load`` would load it here (see the module docstring). With
    ``trusted=True`` a full unpickling (only for a file you trust). ``opt_in`` is how the
    caller's user asks for that, named in the error."""
    if trusted:
        return torch.load(filename, map_location=map_location, weights_only=False)
    try:
        with _runner_types_allowed():
            return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        unsafe = _objects_outside_the_allow_list(filename, error)
    if not torch_loads_weights_only_by_default():
        warnings.warn(
            f'{filename}: holds objects that a weights-only load does not build ({unsafe}); fully '
            f'unpickled, as torch.load does by default on this torch. Unpickling can run arbitrary code: '
            f'load only files you trust (torch >= 2.6 refuses such files by default).', FullUnpicklingWarning)
        return torch.load(filename, map_location=map_location, weights_only=False)
    raise UntrustedCheckpointError(
        f'{filename}: refused to unpickle, it holds objects that a weights-only load does not build '
        f'({unsafe}). Unpickling them can run arbitrary code. If you trust this file, {opt_in}.') from None


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
