# The dynamic-conv comparison's baseline: the static quarter-width ResNet-18 (mmdet's ResNet, as
# the static detector uses), no temperature hook; otherwise odresnet18-quarter-k4_10e_shapes-cls.py.
_base_ = './odresnet18-quarter-k4_10e_shapes-cls.py'
model = dict(backbone=dict(_delete_=True, type='mmdet.ResNet', depth=18, base_channels=16, out_indices=(3, ),
                            norm_eval=False))
custom_hooks = []
