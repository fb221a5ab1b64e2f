# Faster R-CNN, OD-ResNet-50 (ODConv 4x) started from mmdet's *static* ImageNet ResNet-50
# weights, for when no ODConv ImageNet checkpoint is at hand. The static weights are inflated on
# load (every ODConv starts out computing its static conv exactly: its K kernels are the static
# kernel, its sigmoid attention heads zero), so no conversion step is needed; the same file
# written out is `python tools/model_converters/inflate_static_checkpoint.py resnet50.pth out.pth --depth 50 --kernel-num 4`.
# Temperature: no ODConvTemperatureHook. Annealing from T0 = 30 exists to keep freshly
# initialised attention from disturbing early training; an inflated layer is its static conv at
# every temperature, and so is the frozen stage 1, so the run keeps T = 1.
_base_ = './faster-rcnn_odr50-k4_fpn_1x_coco.py'
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')))
