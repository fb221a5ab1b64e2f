"""A tiny mmengine Runner around one ODConv, for hook tests (CPU, seconds)."""
import torch
from mmengine.config import Config
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from odconv_mmdet.layers.odconv import ODConv2d


class ToyDataset(Dataset):
    def __init__(self, n=8):
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 3, 8, 8, generator=gen)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i])


class ToyModel(BaseModel):
    def __init__(self, with_odconv=True):
        super().__init__()
        self.conv = ODConv2d(3, 4, 3, padding=1, kernel_num=2) if with_odconv else torch.nn.Conv2d(3, 4, 3)
        self.seen = []  # temperature at each forward, train and val

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if isinstance(self.conv, ODConv2d):
            self.seen.append((mode, self.conv.temperature))
        out = self.conv(inputs)
        if mode == 'loss':
            return dict(loss=out.square().mean())
        return [dict(value=out.mean())]


class MeanMetric(BaseMetric):
    def process(self, data_batch, data_samples):
        self.results.extend(float(d['value']) for d in data_samples)

    def compute_metrics(self, results):
        return dict(mean=sum(results) / len(results))


def build_runner(work_dir, max_epochs, *, resume=False, load_from=None, hook_cfg=None,
                 model=None, launcher='none', model_wrapper_cfg=None, val=False, experiment_name=None):
    loader = dict(dataset=ToyDataset(), sampler=dict(type='DefaultSampler', shuffle=False),
                  batch_size=2, num_workers=0, collate_fn=dict(type='default_collate'))
    kwargs = {}
    if val:
        kwargs = dict(val_dataloader=loader, val_cfg=dict(), val_evaluator=[MeanMetric()],
                      test_dataloader=loader, test_cfg=dict(), test_evaluator=[MeanMetric()])
    hook_cfg = hook_cfg or dict(type='ODConvTemperatureHook', init_temperature=10, anneal_epochs=2)
    return Runner(
        model=model or ToyModel(), work_dir=str(work_dir), train_dataloader=loader,
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs, val_interval=1),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[hook_cfg], default_scope='mmdet', resume=resume, load_from=load_from,
        launcher=launcher, experiment_name=experiment_name,
        cfg=Config(dict(model_wrapper_cfg=model_wrapper_cfg)) if model_wrapper_cfg else None,
        env_cfg=dict(dist_cfg=dict(backend='gloo')), randomness=dict(seed=0), **kwargs)
