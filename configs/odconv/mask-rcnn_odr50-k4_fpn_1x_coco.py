# Mask R-CNN, OD-ResNet-50 (ODConv 4x), FPN, COCO 1x — the paper's detection row (box/mask AP 40.2/36.1).
# Backbone weights: the official ODConv ImageNet checkpoint, converted once with
#   python tools/model_converters/convert_official_checkpoint.py od_resnet50_4x.pth.tar checkpoints/odresnet50_k4_imagenet.pth
# Temperature: the official COCO fine-tuning from ODConv ImageNet weights keeps T = 1, so no
# ODConvTemperatureHook. frozen_stages=1 freezes the stem and layer1, its ODConv layers included.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['odconv_mmdet'], allow_failed_imports=False)
model = dict(backbone=dict(
    _delete_=True, type='ODResNet', depth=50, kernel_num=4, reduction=0.0625,
    num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=1,
    norm_cfg=dict(type='BN', requires_grad=True), norm_eval=True, style='pytorch',
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/odresnet50_k4_imagenet.pth')))
