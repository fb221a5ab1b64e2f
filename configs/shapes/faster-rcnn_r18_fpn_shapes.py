# Static baseline for the main job: the same detector and schedule with mmdet's ResNet-18
# (half width), trained from scratch; no ODConv, so no temperature hook.
_base_ = ['../_base_/shapes_faster-rcnn_small.py', '../_base_/shapes_dataset.py',
          '../_base_/shapes_schedule.py']
model = dict(backbone=dict(
    _delete_=True, type='ResNet', depth=18, base_channels=32,
    out_indices=(0, 1, 2, 3), frozen_stages=-1, norm_eval=False,
    norm_cfg=dict(type='BN', requires_grad=True), init_cfg=None))
