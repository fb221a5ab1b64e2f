# The static R18 detector turned ODConv (K = 4) and fine-tuned: ODConvBackbone wraps the same
# ResNet-18; load_from the *static* detector checkpoint (--cfg-options load_from=CKPT) inflates
# its block convs, so before fine-tuning this detector computes exactly the static one. Same
# schedule as faster-rcnn_r18_fpn_shapes-finetune.py. No ODConvTemperatureHook: an inflated layer
# is its static conv at any temperature, so there is nothing for annealing to protect; T = 1.
_base_ = ['./faster-rcnn_r18_fpn_shapes-finetune.py']
custom_imports = dict(imports=['odconv_mmdet'], allow_failed_imports=False)
model = dict(backbone=dict(
    _delete_=True, type='ODConvBackbone', kernel_num=4,
    backbone=dict(type='ResNet', depth=18, base_channels=32, out_indices=(0, 1, 2, 3), frozen_stages=-1,
                  norm_eval=False, norm_cfg=dict(type='BN', requires_grad=True), init_cfg=None)))
