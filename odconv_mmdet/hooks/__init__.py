from .temperature_hook import ODConvTemperatureHook, annealed_temperature

__all__ = ['ODConvTemperatureHook', 'annealed_temperature']
