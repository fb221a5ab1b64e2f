# The dynamic-conv comparison on the built-in classification set (issue 31; benchmarks/
# dynamic_convs_study.py runs it, the rule is benchmarks/dynamic-convs-study.md): ODConv 4x, all
# four attentions, in a quarter-width ResNet-18 (base 16) trained for 10 epochs. The recipe of
# odresnet18-half-k4_shapes-cls.py, shortened: steps at epochs 3 / 6 / 9, the temperature annealed
# 30 -> 1 over the first epoch (a tenth). The other *_10e_shapes-cls.py configs change only the
# backbone (and drop the hook where the layer has no temperature).
_base_ = './odresnet18-half-k4_shapes-cls.py'
max_epochs = 10
model = dict(backbone=dict(base_channels=16), head=dict(in_channels=128))
param_scheduler = dict(_delete_=True, type='MultiStepLR', by_epoch=True, gamma=0.1,
                       milestones=[round(max_epochs * f) for f in (0.3, 0.6, 0.9)])
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
custom_hooks = [dict(type='ODConvTemperatureHook', init_temperature=30, anneal_epochs=max_epochs / 10)]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1))
