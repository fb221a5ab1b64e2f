# Static twin of the OD-MobileNetV2 1.0x configs: mmpretrain's MobileNetV2 ImageNet config with
# the official ODConv recipe for the family: 150 epochs, SGD lr 0.05 (momentum 0.9), weight decay
# 4e-5, cosine decay, dropout 0.2 before the classifier. Batch 8 x 32 = 256 as in the ResNet
# recipe (the reference gives no MobileNetV2 batch size).
# Official released top-1: 71.65 (published target; not measured here).
_base_ = 'mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py'
custom_imports = dict(imports=['odconv_mmdet', 'odconv_mmdet.classification'], allow_failed_imports=False)
model = dict(head=dict(type='DropoutLinearClsHead', dropout_rate=0.2))
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=4e-5))
param_scheduler = dict(_delete_=True, type='CosineAnnealingLR', T_max=150, by_epoch=True, begin=0, end=150)
train_cfg = dict(max_epochs=150)
