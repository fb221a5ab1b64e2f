# RTMDet-tiny with ODConv (4x) in its CSPNeXt blocks, COCO, through ODConvBackbone: mmdet's
# CSPNeXt is built as in rtmdet_tiny_8xb32-300e_coco.py; the 3x3 and depthwise 5x5 / pointwise
# convs inside its CSPNeXtBlocks become ODConv, while the stem, the stride-2 stage convs, the CSP
# layers' 1x1 main / short / final convs, channel attention and SPP stay static.
# Weights: mmdet's static ImageNet CSPNeXt-tiny (cspnext-tiny_imagenet_600e.pth), inflated on
# load: each ODConv starts out computing its static conv exactly (zero sigmoid heads).
# Temperature: no ODConvTemperatureHook. Annealing from T0 = 30 exists to keep freshly
# initialised attention from disturbing early training; an inflated layer is its static conv at
# every temperature, so the run keeps T = 1 and the attention learns from the first iteration.
_base_ = 'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py'
custom_imports = dict(imports=['odconv_mmdet'], allow_failed_imports=False)
checkpoint = 'https://download.openmmlab.com/mmdetection/v3.0/rtmdet/cspnext_rsb_pretrain/cspnext-tiny_imagenet_600e.pth'  # noqa
model = dict(backbone=dict(
    _delete_=True, type='ODConvBackbone', kernel_num=4, reduction=0.0625,
    backbone=dict(
        type='CSPNeXt', arch='P5', expand_ratio=0.5, deepen_factor=0.167, widen_factor=0.375,
        channel_attention=True, norm_cfg=dict(type='SyncBN'), act_cfg=dict(type='SiLU', inplace=True),
        init_cfg=dict(type='Pretrained', prefix='backbone.', checkpoint=checkpoint))))
