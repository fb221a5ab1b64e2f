# Faster R-CNN, ResNeXt-101 32x4d with ODConv (4x) in its blocks, FPN, COCO 1x, through
# ODConvBackbone: mmdet's ResNeXt is built as in faster-rcnn_x101-32x4d_fpn_1x_coco.py, its block
# convs (grouped 3x3 included) become ODConv, the 7x7 stem and the 1x1 shortcuts stay static.
# Weights: mmdet's static ImageNet ResNeXt-101 32x4d ('open-mmlab://resnext101_32x4d'), inflated
# on load: each ODConv starts out computing its static conv exactly (zero sigmoid heads).
# Temperature: no ODConvTemperatureHook. Annealing from T0 = 30 exists to keep freshly
# initialised attention from disturbing early training; an inflated layer is its static conv at
# every temperature, so the run keeps T = 1 and the attention learns from the first iteration.
# frozen_stages=1 freezes the stem and layer1, their ODConv attention included.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_x101-32x4d_fpn_1x_coco.py'
custom_imports = dict(imports=['odconv_mmdet'], allow_failed_imports=False)
model = dict(backbone=dict(
    _delete_=True, type='ODConvBackbone', kernel_num=4, reduction=0.0625,
    backbone=dict(
        type='ResNeXt', depth=101, groups=32, base_width=4, num_stages=4, out_indices=(0, 1, 2, 3),
        frozen_stages=1, norm_cfg=dict(type='BN', requires_grad=True), norm_eval=True, style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnext101_32x4d'))))
