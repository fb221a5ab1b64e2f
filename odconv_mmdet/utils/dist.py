"""Distributed training on machines without CUDA (gloo + CPU DDP) under mmengine.

mmengine 0.10.7 assumes CUDA in two places: ``init_dist('pytorch')`` calls
``torch.cuda.set_device`` before creating the process group, and ``Runner.wrap_model`` gives
``MMDistributedDataParallel`` ``device_ids=[LOCAL_RANK]``, which DDP rejects for a CPU module.
``prepare_cpu_distributed`` handles both before the Runner is built: it creates the gloo process
group itself (the Runner then skips ``init_dist``, as it does for any initialised group) and
sets a model wrapper config with ``device_ids=None``. With CUDA present it changes nothing.

``run_and_exit`` ends such a process: a gloo process group needs a hard exit, explained there.
"""
import atexit
import os
import sys
import traceback

import torch
import torch.distributed as dist


def prepare_cpu_distributed(cfg, launcher):
    """Adjust ``cfg`` (an mmengine Config) in place for CPU DDP; returns True if it applied."""
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise ValueError(f'launcher {launcher!r} is not supported without CUDA; use torchrun '
                         "(tools/dist_train.sh) with --launcher pytorch")
    missing = [v for v in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')
               if v not in os.environ]
    if missing:
        raise RuntimeError(f'--launcher pytorch needs the torchrun environment; missing {missing}. '
                           'Start it with tools/dist_train.sh or torchrun.')
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    dist_cfg['backend'] = 'gloo'
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo', rank=int(os.environ['RANK']),
                                world_size=int(os.environ['WORLD_SIZE']))
    wrapper = cfg.get('model_wrapper_cfg') or {}
    wrapper = dict(wrapper)
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None  # CPU module: DDP takes no device ids
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    return True


def run_and_exit(main):
    """Run ``main()`` and end the process with its status (an int, as ``sys.exit`` takes).

    An exception in ``main`` prints its traceback and gives status 1. Without a gloo process group
    this is ``sys.exit(status)``. With one, the process ends the group and then leaves by
    ``os._exit`` after running the ``atexit`` handlers (``logging.shutdown`` flushes and closes
    mmengine's log files) and flushing stdout / stderr, i.e. it skips only the interpreter's
    final tear-down. Why: torch 2.13 stashes a Python object (``contextvars.Context``) in the
    thread-local state during every backward pass; a gloo allreduce that DDP launches there keeps
    a copy, and the gloo worker thread that finishes it may drop the last reference. If that
    happens after the main thread has begun interpreter finalisation, the worker cannot take the
    GIL, Python ends the thread from inside a C++ destructor, and the process dies with
    "terminate called without an active exception" (SIGABRT) after all its work succeeded; a
    core dump shows ``~AsyncAllreduceWork -> ~ThreadLocalState -> SafePyObject decref ->
    take_gil -> pthread_exit``. ``dist.destroy_process_group()`` does not prevent it, since the
    DDP wrapper still holds the group. Reproduction and counts:
    ``python benchmarks/gloo_exit_abort.py``.
    """
    try:
        status = main()
    except SystemExit as stop:
        status = stop.code
    except BaseException:  # noqa: B036  (any failure must still end the process as a failure)
        traceback.print_exc()
        status = 1
    if not (dist.is_available() and dist.is_initialized() and dist.get_backend() == 'gloo'):
        sys.exit(status)
    if status is None:
        status = 0
    elif not isinstance(status, int):
        print(status, file=sys.stderr)
        status = 1
    if status == 0:
        dist.barrier()  # no rank ends the group while a peer still communicates
    dist.destroy_process_group()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
