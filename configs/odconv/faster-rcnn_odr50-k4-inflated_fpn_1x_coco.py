# Faster R-CNN, OD-ResNet-50 (ODConv 4x) started from *inflated static* ResNet-50 weights, for
# when no ODConv ImageNet checkpoint is at hand:
#   python tools/inflate_static_checkpoint.py resnet50-torchvision.pth checkpoints/odresnet50_k4_inflated.pth --depth 50 --kernel-num 4
# The attention branches start untrained, so the temperature is annealed from 30 to 1 over the
# first epoch, as the official recipe does for ODConv weights that are not yet trained.
_base_ = './faster-rcnn_odr50-k4_fpn_1x_coco.py'
model = dict(backbone=dict(
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/odresnet50_k4_inflated.pth')))
custom_hooks = [dict(type='ODConvTemperatureHook', init_temperature=30, anneal_epochs=1)]
