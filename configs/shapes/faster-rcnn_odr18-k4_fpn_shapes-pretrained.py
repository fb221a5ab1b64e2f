# The main job's detector from a pretrained OD backbone, the second half of the official recipe:
# the half-width ODResNet-18 (K = 4) loads the backbone of a classifier pretrained with mmpretrain
# (configs/shapes_cls/odresnet18-half-k4_shapes-cls.py; its checkpoint's 'backbone.' weights), and
# trains at T = 1 throughout, as the official COCO fine-tuning does: no temperature hook.
# The checkpoint below is where mmpretrain's train tool writes it by default; benchmarks/pretrain_study.py
# passes its own (--cfg-options model.backbone.init_cfg.checkpoint=...).
_base_ = ['./faster-rcnn_odr18-k4_fpn_shapes.py']
model = dict(backbone=dict(init_cfg=dict(_delete_=True, type='Pretrained', prefix='backbone.',
                                         checkpoint='work_dirs/odresnet18-half-k4_shapes-cls/epoch_20.pth')))
custom_hooks = []
