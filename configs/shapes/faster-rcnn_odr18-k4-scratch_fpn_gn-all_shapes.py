# The main job on the from-scratch recipe of configs/odconv/*-scratch_fpn_gn-all_6x_coco.py, at
# shapes scale: GN in backbone, neck and box head (mmdet's scratch recipe; 4 convs + 1 fc with GN,
# 32 channels here), the per-sample (GN) attention norm, and the temperature annealed from 30
# to 1 over the first tenth of training (0.3 of the main job's 3 epochs). Same 3-epoch schedule
# and optimiser as the main job.
_base_ = ['./faster-rcnn_odr18-k4_fpn_shapes.py']
norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)
model = dict(
    backbone=dict(norm_cfg=norm_cfg, attention_norm='GN', zero_init_residual=False),
    neck=dict(norm_cfg=norm_cfg),
    roi_head=dict(bbox_head=dict(type='Shared4Conv1FCBBoxHead', conv_out_channels=32, norm_cfg=norm_cfg)))
optim_wrapper = dict(paramwise_cfg=dict(norm_decay_mult=0.))
custom_hooks = [dict(type='ODConvTemperatureHook', init_temperature=30, anneal_epochs=0.3)]
