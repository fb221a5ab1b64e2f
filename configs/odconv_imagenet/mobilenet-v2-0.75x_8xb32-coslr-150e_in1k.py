# Static twin of the OD-MobileNetV2 0.75x configs: the 1.0x twin's recipe at width 0.75.
# Official released top-1: 69.18 (published target; not measured here).
_base_ = './mobilenet-v2-1.0x_8xb32-coslr-150e_in1k.py'
model = dict(backbone=dict(widen_factor=0.75))
