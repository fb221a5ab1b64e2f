# Fine-tuning schedule for the static Faster R-CNN R18 of faster-rcnn_r18_fpn_shapes.py, started
# from a trained detector (set load_from, e.g. --cfg-options load_from=CKPT): one epoch, AdamW at
# a quarter of the from-scratch lr, short warm-up, cosine decay. The static twin of
# faster-rcnn_od-r18-k4_fpn_shapes-finetune.py, used by benchmarks/static_to_odconv_finetune.py.
_base_ = ['./faster-rcnn_r18_fpn_shapes.py']
max_epochs = 1
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=0.0005))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, T_max=max_epochs, eta_min_ratio=0.01,
         convert_to_iter_based=True),
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
