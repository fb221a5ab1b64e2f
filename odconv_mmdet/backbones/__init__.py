from .od_mobilenet_v2 import ODMobileNetV2
from .od_resnet import ODResNet
from .odconv_backbone import ODConvBackbone

__all__ = ['ODResNet', 'ODMobileNetV2', 'ODConvBackbone']
