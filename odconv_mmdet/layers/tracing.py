"""``torch.fx.symbolic_trace`` of a model holding ODConv layers.

Inside a traced model each ODConv layer (and its attention) is recorded as one call, as fx
records torch.nn layers, instead of its input-dependent code: the traced model runs it eagerly,
and graph passes that look for module calls (mmengine's ``efficient_conv_bn_eval``) see a conv
followed by its norm. The trace's root has no path: an ODConv2d traced alone records its body.
"""
import torch
import torch.nn as nn


@torch.jit.unused
def is_fx_proxy(x: torch.Tensor) -> bool:
    return isinstance(x, torch.fx.Proxy)


@torch.jit.unused
def traced_as_one_call(module: nn.Module, x: torch.Tensor):
    tracer = x.tracer
    return tracer.create_proxy('call_module', tracer.path_of_module(module), (x,), {})
