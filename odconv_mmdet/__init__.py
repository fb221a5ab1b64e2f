"""ODConv for MMDetection 3.x.

``import odconv_mmdet`` (or ``custom_imports=dict(imports=['odconv_mmdet'])`` in a config)
registers everything with the OpenMMLab registries. The layer itself lives in
``odconv_mmdet.layers.odconv`` and needs only PyTorch: without mmengine installed, this package
still imports and exposes the plain-PyTorch layer.
"""
from .layers import CondConv2d, DyConv2d, ODConv2d, odconv_layers, set_temperature
from .utils.fuse_conv_bn import fuse_conv_bn

__version__ = '0.1.0'
__all__ = ['CondConv2d', 'DyConv2d', 'ODConv2d', 'fuse_conv_bn', 'odconv_layers', 'set_temperature', '__version__']



def _installed(name):
    try:
        __import__(name)
    except ImportError:
        return False
    return True


# Only the presence of the OpenMMLab packages is probed; errors inside our own registration
# code are not swallowed.
if _installed('mmengine'):
    from . import compat  # noqa: F401  (fixes known stack traps once, before any checkpoint I/O)
    from .layers import registration  # noqa: F401
    if _installed('mmdet'):
        from . import backbones, hooks, root_registration  # noqa: F401
