# The static twin of faster-rcnn_odr18-k4_fpn_shapes-pretrained.py: the main job's static detector
# with the half-width ResNet-18 of a classifier pretrained with mmpretrain
# (configs/shapes_cls/resnet18-half_shapes-cls.py; its checkpoint's 'backbone.' weights).
_base_ = ['./faster-rcnn_r18_fpn_shapes.py']
model = dict(backbone=dict(init_cfg=dict(_delete_=True, type='Pretrained', prefix='backbone.',
                                         checkpoint='work_dirs/resnet18-half_shapes-cls/epoch_20.pth')))
