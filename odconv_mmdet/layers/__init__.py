from .odconv import ODConv2d, ODConvAttention, odconv_layers, set_temperature

__all__ = ['ODConv2d', 'ODConvAttention', 'odconv_layers', 'set_temperature']
