# OD-ResNet-101 with ODConv 1x (every conv inside a residual block; reduction 1/16) on ImageNet,
# the official recipe: the static twin's schedule and dropout, and the attention temperature
# annealed from 30 to 1, linearly per iteration, over the first 10 epochs.
# Official released top-1: 78.84 (static ResNet-101: 77.44). Published targets; not measured here.
_base_ = './resnet101_8xb32-dropout_in1k.py'
# norm_eval=False: ODResNet is mmdet's ResNet, which freezes its BatchNorms by default (for
# detection); mmpretrain's ResNet, which this config's base uses, trains them.
model = dict(backbone=dict(type='ODResNet', kernel_num=1, norm_eval=False))
custom_hooks = [dict(type='ODConvTemperatureHook', init_temperature=30, anneal_epochs=10)]
