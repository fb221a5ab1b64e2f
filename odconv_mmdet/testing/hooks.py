"""Hooks that the tests load into runs through custom_imports (``odconv_mmdet.testing.hooks``):
each rank saves its final parameters; one rank raises on purpose."""
import os

import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmdet.registry import HOOKS


@HOOKS.register_module()
class DumpWeightsHook(Hook):
    """Each rank saves its final parameters (BN running statistics stay per rank under DDP, as in mmdet)."""

    def after_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        params = {k: v.detach() for k, v in model.named_parameters()}
        torch.save(dict(world_size=get_world_size(), wrapped=is_model_wrapper(runner.model), params=params),
                   os.path.join(runner.work_dir, f'weights_rank{get_rank()}.pth'))


@HOOKS.register_module()
class FailOnRankHook(Hook):
    """Rank `rank` raises, to test that a multi-process run then exits non-zero."""

    def __init__(self, rank=1):
        self.rank = rank

    def _fail(self):
        if get_rank() == self.rank:
            raise RuntimeError(f'rank {self.rank} fails on purpose')

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._fail()

    def before_test_iter(self, runner, batch_idx, data_batch=None):
        self._fail()
