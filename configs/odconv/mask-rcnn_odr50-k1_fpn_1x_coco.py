# Mask R-CNN, OD-ResNet-50 (ODConv 1x), FPN, COCO 1x: the K=4 config with K=1.
# Backbone weights: the official ODConv ImageNet checkpoint, converted once with
#   python tools/model_converters/convert_official_checkpoint.py od_resnet50_1x.pth.tar checkpoints/odresnet50_k1_imagenet.pth
# Temperature stays 1 (official COCO fine-tuning), so no ODConvTemperatureHook.
_base_ = './mask-rcnn_odr50-k4_fpn_1x_coco.py'
model = dict(backbone=dict(
    kernel_num=1, init_cfg=dict(type='Pretrained', checkpoint='checkpoints/odresnet50_k1_imagenet.pth')))
