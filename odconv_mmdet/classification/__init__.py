"""What the official ImageNet recipe needs in mmpretrain beyond the backbones. Imported only by
mmpretrain configs (``custom_imports``): unlike the rest of the plugin it needs mmpretrain."""
from .dropout_head import DropoutLinearClsHead

__all__ = ['DropoutLinearClsHead']
