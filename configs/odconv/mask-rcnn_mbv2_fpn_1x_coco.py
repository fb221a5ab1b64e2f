# Baseline: Mask R-CNN with mmdet's MobileNetV2 1.0 and FPN, COCO 1x (no Mask R-CNN MobileNetV2 row in the paper).
# Backbone weights: mmdet's ImageNet MobileNetV2 checkpoint.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
model = dict(
    backbone=dict(_delete_=True, type='MobileNetV2', widen_factor=1.0, out_indices=(1, 2, 4, 7),
                  frozen_stages=1, norm_cfg=dict(type='BN', requires_grad=True), norm_eval=True,
                  init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://mmdet/mobilenet_v2')),
    neck=dict(in_channels=[24, 32, 96, 1280]))
