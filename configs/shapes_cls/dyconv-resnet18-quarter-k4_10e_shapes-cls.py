# DyConv 4x (softmax attention over an FC-ReLU-FC bottleneck, reduction 4, with the temperature
# annealed 30 -> 1 as in DyConv's recipe) in every conv inside the residual blocks of the
# quarter-width ResNet-18, in the comparison of odresnet18-quarter-k4_10e_shapes-cls.py.
_base_ = './odresnet18-quarter-k4_10e_shapes-cls.py'
model = dict(backbone=dict(
    _delete_=True, type='ODConvBackbone', conv_type='DyConv', kernel_num=4,
    backbone=dict(type='ResNet', depth=18, base_channels=16, out_indices=(3, ), norm_eval=False)))
