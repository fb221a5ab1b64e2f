# Short schedule for the built-in dataset on a 2-core CPU (backbones train from scratch).
_base_ = ['mmdet::_base_/default_runtime.py']
max_epochs = 3
# Validate every epoch, so the training curves have an mAP point per epoch: each validation of
# the 200 val images took 6-7 s of a 290 s main-job run on the 2-core CPU
# (benchmarks/cpu-2core_validation_cost_dev.json).
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# AdamW with gradient clipping: backbones train from scratch in 3 epochs, and the ODConv
# attention sharpens while the temperature anneals from 30 to 1 within the first.
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=0.002, weight_decay=0.05),
                     clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs, eta_min_ratio=0.01,
         convert_to_iter_based=True),
]
default_hooks = dict(logger=dict(type='LoggerHook', interval=10),
                     checkpoint=dict(type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1))
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
auto_scale_lr = dict(enable=False, base_batch_size=8)
