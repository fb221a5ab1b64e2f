# ODConv 1x with only the channel attention (the paper's ablation; the others are 1 and have no
# head), in the comparison of odresnet18-quarter-k4_10e_shapes-cls.py.
_base_ = './odresnet18-quarter-k4_10e_shapes-cls.py'
model = dict(backbone=dict(kernel_num=1, attentions=['channel']))
