from .od_mobilenet_v2 import ODMobileNetV2
from .od_resnet import ODResNet

__all__ = ['ODResNet', 'ODMobileNetV2']
