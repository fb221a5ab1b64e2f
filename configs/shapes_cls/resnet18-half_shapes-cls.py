# The static twin of odresnet18-half-k4_shapes-cls.py: the same data, schedule and head with
# mmdet's ResNet-18 (half width; the class the main job's static detector uses, so the weights
# load there by name; norm_eval=False, as mmdet's ResNet freezes its BatchNorms by default), and no
# temperature hook.
_base_ = './odresnet18-half-k4_shapes-cls.py'
model = dict(backbone=dict(_delete_=True, type='mmdet.ResNet', depth=18, base_channels=32, out_indices=(3, ),
                            norm_eval=False))
custom_hooks = []
