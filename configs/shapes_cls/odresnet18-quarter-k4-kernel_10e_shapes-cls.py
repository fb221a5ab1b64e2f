# ODConv 4x with only the kernel attention (ODConv's softmax over 4 kernels from its BN
# bottleneck; the others are 1 and have no head), in the comparison of
# odresnet18-quarter-k4_10e_shapes-cls.py.
_base_ = './odresnet18-quarter-k4_10e_shapes-cls.py'
model = dict(backbone=dict(attentions=['kernel']))
