# Faster R-CNN sized for a 2-core CPU and 128x128 images: narrow FPN and heads, fewer RoIs,
# anchors scaled to objects of 16-64 px. Backbones are set by the configs that inherit this.
_base_ = ['mmdet::_base_/models/faster-rcnn_r50_fpn.py']
neck_channels = 64
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=neck_channels),
    rpn_head=dict(in_channels=neck_channels, feat_channels=neck_channels,
                  anchor_generator=dict(scales=[4])),
    roi_head=dict(
        # mmcv's CPU RoIAlign backward dominated a training step: fixed 2x2 sampling per bin.
        bbox_roi_extractor=dict(out_channels=neck_channels,
                                roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=2)),
        # GIoU on decoded boxes: a loss on the box itself, for tight boxes in a short schedule.
        bbox_head=dict(in_channels=neck_channels, fc_out_channels=256, num_classes=4,
                       reg_decoded_bbox=True, loss_bbox=dict(_delete_=True, type='GIoULoss', loss_weight=10.0))),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=500, max_per_img=300),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100), rcnn=dict(max_per_img=50)))
