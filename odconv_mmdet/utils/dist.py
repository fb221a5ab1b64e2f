"""Distributed training on machines without CUDA (gloo + CPU DDP) under mmengine.

mmengine 0.10.7 assumes CUDA in two places: ``init_dist('pytorch')`` calls
``torch.cuda.set_device`` before creating the process group, and ``Runner.wrap_model`` gives
``MMDistributedDataParallel`` ``device_ids=[LOCAL_RANK]``, which DDP rejects for a CPU module.
``prepare_cpu_distributed`` handles both before the Runner is built: it creates the gloo process
group itself (the Runner then skips ``init_dist``, as it does for any initialised group) and
sets a model wrapper config with ``device_ids=None``. With CUDA present it changes nothing.
"""
import os

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
