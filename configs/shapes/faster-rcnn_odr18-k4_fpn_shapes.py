# Main job: Faster R-CNN with a half-width ODResNet-18 (K=4, every block conv ODConv) trained
# from scratch on the built-in shapes dataset. The temperature hook anneals T from 30 to 1 over
# the first epochs, as the official recipe does for ODConv weights that start from scratch.
_base_ = ['../_base_/shapes_faster-rcnn_small.py', '../_base_/shapes_dataset.py',
          '../_base_/shapes_schedule.py']
custom_imports = dict(imports=['odconv_mmdet'], allow_failed_imports=False)
model = dict(backbone=dict(
    _delete_=True, type='ODResNet', depth=18, base_channels=32, kernel_num=4,
    out_indices=(0, 1, 2, 3), frozen_stages=-1, norm_eval=False,
    norm_cfg=dict(type='BN', requires_grad=True), init_cfg=None))
custom_hooks = [dict(type='ODConvTemperatureHook', init_temperature=30, anneal_epochs=1)]
