# Static twin of the OD-ResNet-101 configs: mmpretrain's ResNet-101 ImageNet config (100 epochs,
# SGD lr 0.1 for batch 256, weight decay 1e-4, steps at 30 / 60 / 90) with the official recipe's
# dropout 0.2 before the classifier.
# Official released top-1: 77.44 (published target; not measured here).
_base_ = 'mmpretrain::resnet/resnet101_8xb32_in1k.py'
custom_imports = dict(imports=['odconv_mmdet', 'odconv_mmdet.classification'], allow_failed_imports=False)
model = dict(head=dict(type='DropoutLinearClsHead', dropout_rate=0.2))
