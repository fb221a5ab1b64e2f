"""Load a static conv's weights into an ODConv2d so that it computes exactly that conv.

The one rule, used wherever a state dict reaches an ODConv2d (``load_state_dict``, mmengine's
``Pretrained`` init, ``load_from``) and by ``tools/model_converters/inflate_static_checkpoint.py``:

* every candidate kernel becomes the static kernel times 2 ** n, n being the number of sigmoid
  attentions of the layer (channel, filter and spatial, those the layer has);
* the sigmoid attention heads (``channel_fc``, ``filter_fc``, ``spatial_fc``) get zero weights and
  biases, so each of their attentions is sigmoid(0 / T) = 1/2 at any temperature T, and the
  product of the n of them cancels the 2 ** n;
* the kernel attention (``kernel_fc``), ``fc`` and the attention norm keep the layer's values:
  K identical kernels mix to the same kernel whatever their softmax weights (which sum to 1),
  and a non-uniform kernel attention is what lets the K kernels receive different gradients.
  With a uniform one the identical kernels would get identical gradients and never diverge.
  DyConv (softmax over its K kernels) loads the same way.
* CondConv's sigmoid routing does not sum to 1: its ``kernel_fc`` gets zero weights and the bias
  logit(1/K), so every routing weight is 1/K, and kernel i becomes the static kernel plus the
  layer's own kernel i minus the mean of its K kernels. The K kernels then average to the static
  one (exact), yet differ, so that they and the routing receive different gradients.

So the inflated layer is the static conv, exactly (up to float rounding), until it is trained.
A static bias ``[out]`` loads into a layer built with ``bias=True`` as it is, or repeated for
each kernel where the layer has per-kernel biases ``[K, out]`` (CondConv, DyConv).
"""
import math
from typing import Dict, Optional

import torch

SIGMOID_HEADS = ('channel_fc', 'filter_fc', 'spatial_fc')


def is_static_weight(weight: torch.Tensor, conv) -> bool:
    """``weight`` is a static conv kernel [out, in/g, k, k] of the shape ``conv``'s kernels have."""
    return isinstance(weight, torch.Tensor) and weight.shape == conv.weight.shape[1:]


def inflated_state(conv, weight: torch.Tensor, bias: Optional[torch.Tensor], prefix: str = '') -> Dict[str, torch.Tensor]:
    """The state dict entries (keys under ``prefix``) that make ``conv`` (ODConv2d, CondConv2d or
    DyConv2d) compute the static conv (``weight``, ``bias``)."""
    attention = conv.attention
    kernel_num = conv.kernel_num
    sigmoid_routing = getattr(attention, 'routing', 'softmax') == 'sigmoid'
    sigmoid_attentions = sum(getattr(attention, head, None) is not None for head in SIGMOID_HEADS)
    kernels = (weight.to(conv.weight.dtype) * 2.0 ** sigmoid_attentions).unsqueeze(0).repeat(kernel_num, 1, 1, 1, 1)
    if sigmoid_routing:
        own = conv.weight.detach()
        kernels = kernels + (own - own.mean(dim=0, keepdim=True))
    state = {prefix + 'weight': kernels}
    for key, value in attention.state_dict().items():
        head = key.split('.', 1)[0]
        if head in SIGMOID_HEADS or (sigmoid_routing and key == 'kernel_fc.weight'):
            value = torch.zeros_like(value)
        elif sigmoid_routing and key == 'kernel_fc.bias':
            value = torch.full_like(value, -math.log(kernel_num - 1))  # sigmoid = 1 / K
        state[prefix + 'attention.' + key] = value.clone()
    if isinstance(bias, torch.Tensor) and conv.bias is not None and conv.bias.dim() == 2 and bias.dim() == 1:
        state[prefix + 'bias'] = bias.to(conv.bias.dtype).unsqueeze(0).repeat(kernel_num, 1)
    return state
