# Mask R-CNN with OD-MobileNetV2 1.0 (ODConv 4x) and FPN, COCO 1x.
# Backbone weights: the official ODConv ImageNet checkpoint, converted once with
#   python tools/model_converters/convert_official_checkpoint.py od_mobilenetv2_100_4x.pth.tar checkpoints/odmbv2_100_k4_imagenet.pth
# Temperature stays 1 (official COCO fine-tuning), so no ODConvTemperatureHook.
_base_ = './mask-rcnn_mbv2_fpn_1x_coco.py'
custom_imports = dict(imports=['odconv_mmdet'], allow_failed_imports=False)
model = dict(backbone=dict(
    _delete_=True, type='ODMobileNetV2', widen_factor=1.0, kernel_num=4, reduction=0.0625,
    out_indices=(1, 2, 4, 7), frozen_stages=1, norm_cfg=dict(type='BN', requires_grad=True), norm_eval=True,
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/odmbv2_100_k4_imagenet.pth')))
