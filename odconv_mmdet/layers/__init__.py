from .dynamic_convs import CondConv2d, DyConv2d
from .odconv import ODConv2d, ODConvAttention, odconv_layers, set_temperature, temperature_layers

__all__ = ['CondConv2d', 'DyConv2d', 'ODConv2d', 'ODConvAttention', 'odconv_layers', 'set_temperature',
           'temperature_layers']
