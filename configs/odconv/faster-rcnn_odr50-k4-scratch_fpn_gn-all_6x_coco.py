# Faster R-CNN, OD-ResNet-50 (ODConv 4x), FPN, trained from scratch on COCO: mmdet's "Rethinking
# ImageNet Pre-training" recipe (GN in backbone, neck and heads, 6x = 73 epochs) with ODConv.
# Static twin: mmdet::scratch/faster-rcnn_r50-scratch_fpn_gn-all_6x_coco.py (mmdet reports
# box AP 40.7 for it). No official ODConv from-scratch COCO figure exists; nothing here has been
# trained on COCO by this project: these figures are not measured here.
# Temperature: ODConv weights start untrained, so T anneals from 30 to 1 over the first tenth
# of training (7.3 of 73 epochs), as the official recipe anneals over the first 10 of 100.
# The attention norm is per-sample GroupNorm, as the GN everywhere else (attention_norm=None
# would pick it from norm_cfg too).
_base_ = 'mmdet::scratch/faster-rcnn_r50-scratch_fpn_gn-all_6x_coco.py'
custom_imports = dict(imports=['odconv_mmdet'], allow_failed_imports=False)
norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)
model = dict(backbone=dict(
    _delete_=True, type='ODResNet', depth=50, kernel_num=4, reduction=0.0625, attention_norm='GN',
    num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=-1, zero_init_residual=False,
    norm_cfg=norm_cfg, norm_eval=False, style='pytorch', init_cfg=None))
custom_hooks = [dict(type='ODConvTemperatureHook', init_temperature=30, anneal_epochs=7.3)]
