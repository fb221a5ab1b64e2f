# The official ODConv ImageNet recipe scaled down to the built-in classification set
# (tools/misc/generate_classification.py: 10 classes of textured shapes in clutter, 64 px): a user's
# config that inherits the project's OD-ResNet-18 ImageNet config and swaps in the data, a half-width
# backbone (the main job's, base 32) and a short schedule. As in the recipe: SGD (momentum 0.9,
# weight decay 1e-4) with the lr scaled linearly from 0.1 at batch 256, steps at 30 / 60 / 90 % of
# training, dropout 0.2, and the temperature annealed 30 -> 1 over the first tenth of training.
_base_ = '../odconv_imagenet/odresnet18-k4_8xb32_in1k.py'
max_epochs = 20
batch_size = 64
data_root = 'data/shapes_cls'
model = dict(
    backbone=dict(base_channels=32),
    head=dict(num_classes=10, in_channels=256, topk=(1, )))
data_preprocessor = dict(num_classes=10)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.5, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=batch_size, num_workers=2, persistent_workers=True,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root, data_prefix='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=batch_size, num_workers=2, persistent_workers=True,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root, data_prefix='val',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
optim_wrapper = dict(optimizer=dict(lr=0.1 * batch_size / 256))
param_scheduler = dict(_delete_=True, type='MultiStepLR', by_epoch=True, gamma=0.1,
                       milestones=[round(max_epochs * f) for f in (0.3, 0.6, 0.9)])
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
custom_hooks = [dict(type='ODConvTemperatureHook', init_temperature=30, anneal_epochs=max_epochs / 10)]
default_hooks = dict(logger=dict(interval=20),
                     checkpoint=dict(type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1))
env_cfg = dict(mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0), dist_cfg=dict(backend='gloo'))
auto_scale_lr = dict(enable=False)
