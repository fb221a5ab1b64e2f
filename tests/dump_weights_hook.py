"""Test helper imported by configs through custom_imports: each rank saves its final parameters (BN running statistics stay per-rank under DDP, as in mmdet)."""
import os

import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmdet.registry import HOOKS


@HOOKS.register_module()
class DumpWeightsHook(Hook):
    def after_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        params = {k: v.detach() for k, v in model.named_parameters()}
        torch.save(dict(world_size=get_world_size(), wrapped=is_model_wrapper(runner.model), params=params),
                   os.path.join(runner.work_dir, f'weights_rank{get_rank()}.pth'))
