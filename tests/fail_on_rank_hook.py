"""Test helper imported by configs through custom_imports: one rank raises, to test that a
multi-process run then exits non-zero."""
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmdet.registry import HOOKS


@HOOKS.register_module()
class FailOnRankHook(Hook):
    def __init__(self, rank=1):
        self.rank = rank

    def _fail(self):
        if get_rank() == self.rank:
            raise RuntimeError(f'rank {self.rank} fails on purpose')

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._fail()

    def before_test_iter(self, runner, batch_idx, data_batch=None):
        self._fail()
