# The static twin of odresnet18-half-k4_shapes-cls.py: the same data, schedule and head with
# mmdet's ResNet-18 (half width; the class the main job's static detector uses, so the weights
# load there by name), and no temperature hook.
_base_ = './odresnet18-half-k4_shapes-cls.py'
model = dict(backbone=dict(_delete_=True, type='mmdet.ResNet', depth=18, base_channels=32, out_indices=(3, )))
custom_hooks = []
