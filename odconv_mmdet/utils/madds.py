"""Multiply-adds (MAdds) of a forward pass, with ODConv's own work counted per component.

Convention (that of the paper's MAdds): one multiply-add per weight use in convolutions and
fully connected layers; norms, activations, pooling (ODConv's global pooling included), RoI and
other mmcv ops are not counted. Per ODConv layer (input C x H x W, output O x H' x W', g
groups, k x k kernel, K kernels, attention width A, |W| = O * C/g * k*k):

* ``odconv_conv``: the convolution with the per-sample kernel, O * C/g * k*k * H'W';
* ``odconv_attention``: ``fc`` C*A and the heads A*(C + O + k*k + K), for those present (for
  any layer of the family: the weights of its attention's 1x1 convs, each used once per sample);
* ``odconv_kernel_aggregation``: building the per-sample kernel as the official code does,
  ``sum_K(spatial * kernel * weight)``: each of the K*|W| elements of that product costs two,
  its multiply and its share of the sum over K; 2*K*|W| (2*|W| for K = 1 with a spatial
  attention; none for K = 1 without one, where the kernel is the static weight);
* ``odconv_attention_products``: channel attention on the input, C*H*W, and filter attention
  on the output, O*H'W' (each where the layer has it).

These are the formulation-independent counts of the official computation (a kernel is built
per sample); this package's faster formulations do other but equivalent work. README.md
(*FLOPs and parameters*) compares them with the paper's table.
"""
from collections import defaultdict
from typing import Callable, Dict

import torch
import torch.nn as nn

from ..layers.odconv import _is_odconv

COMPONENTS = ('static_conv', 'linear', 'odconv_conv', 'odconv_attention', 'odconv_kernel_aggregation',
              'odconv_attention_products')


def odconv_madds(layer, x: torch.Tensor, out: torch.Tensor) -> Dict[str, int]:
    batch, channels, height, width = x.shape
    out_positions = out.size(2) * out.size(3)
    k = layer.kernel_size[0]
    kernel_numel = layer.out_channels * (channels // layer.groups) * k * k
    attention_weights = sum(m.weight.numel() for m in layer.attention.modules() if isinstance(m, nn.Conv2d))
    has = layer.attention_has
    aggregation = 2 * layer.kernel_num * kernel_numel if (layer.kernel_num > 1 or has('spatial_fc')) else 0
    products = ((channels * height * width if has('channel_fc') else 0)
                + (layer.out_channels * out_positions if has('filter_fc') else 0))
    return dict(odconv_conv=batch * kernel_numel * out_positions,
                odconv_attention=batch * attention_weights,
                odconv_kernel_aggregation=batch * aggregation,
                odconv_attention_products=batch * products)


def count_madds(model: nn.Module, run: Callable[[], object]) -> Dict[str, int]:
    """MAdds per component (see the module docstring) of ``run()``, a forward pass of ``model``
    (or of part of it), counted with forward hooks."""
    counts: Dict[str, int] = defaultdict(int)
    # (ODConv's attention applies its 1x1 convs' weights as linear maps: their hooks never fire)
    odconv_ids = {id(m) for m in model.modules() if _is_odconv(m)}

    def hook(module, inputs, output):
        x = inputs[0]
        if id(module) in odconv_ids:
            for key, value in odconv_madds(module, x, output).items():
                counts[key] += value
        elif isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            counts['static_conv'] += output.numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            counts['linear'] += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if id(m) in odconv_ids or isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
    return {key: counts.get(key, 0) for key in COMPONENTS}


def count_parameters(model: nn.Module) -> Dict[str, int]:
    odconv = sum(p.numel() for m in model.modules() if _is_odconv(m) for p in m.parameters())
    total = sum(p.numel() for p in model.parameters())
    return dict(total=total, odconv=odconv)
