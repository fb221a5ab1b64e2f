# Static twin of the OD-ResNet-18 configs: mmpretrain's ResNet-18 ImageNet config (100 epochs,
# SGD lr 0.1 momentum 0.9 for batch 8 x 32 = 256, weight decay 1e-4, steps at 30 / 60 / 90) with
# the official ODConv recipe's dropout 0.2 before the classifier.
# Official released top-1: 70.25 (published target; not measured here).
_base_ = 'mmpretrain::resnet/resnet18_8xb32_in1k.py'
custom_imports = dict(imports=['odconv_mmdet', 'odconv_mmdet.classification'], allow_failed_imports=False)
model = dict(head=dict(type='DropoutLinearClsHead', dropout_rate=0.2))
