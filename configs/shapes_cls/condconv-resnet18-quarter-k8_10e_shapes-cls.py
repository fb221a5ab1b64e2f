# CondConv 8x (sigmoid routing, no temperature: no hook) in every conv inside the residual blocks
# of the quarter-width ResNet-18, in the comparison of odresnet18-quarter-k4_10e_shapes-cls.py.
_base_ = './odresnet18-quarter-k4_10e_shapes-cls.py'
model = dict(backbone=dict(
    _delete_=True, type='ODConvBackbone', conv_type='CondConv', kernel_num=8,
    backbone=dict(type='ResNet', depth=18, base_channels=16, out_indices=(3, ), norm_eval=False)))
custom_hooks = []
