# ODConv 1x (one kernel: the spatial, input-channel and filter attentions) in the comparison
# of odresnet18-quarter-k4_10e_shapes-cls.py.
_base_ = './odresnet18-quarter-k4_10e_shapes-cls.py'
model = dict(backbone=dict(kernel_num=1))
