"""Load a static conv's weights into an ODConv2d so that it computes exactly that conv.

The one rule, used wherever a state dict reaches an ODConv2d (``load_state_dict``, mmengine's
``Pretrained`` init, ``load_from``) and by ``tools/model_converters/inflate_static_checkpoint.py``:

* every candidate kernel becomes the static kernel times 2 ** n, n being the number of sigmoid
  attentions of the layer (channel, plus filter and spatial where the layer has them);
* the sigmoid attention heads (``channel_fc``, ``filter_fc``, ``spatial_fc``) get zero weights and
  biases, so each of their attentions is sigmoid(0 / T) = 1/2 at any temperature T, and the
  product of the n of them cancels the 2 ** n;
* the kernel attention (``kernel_fc``), ``fc`` and the attention norm keep the layer's values:
  K identical kernels mix to the same kernel whatever their softmax weights (which sum to 1),
  and a non-uniform kernel attention is what lets the K kernels receive different gradients.
  With a uniform one the identical kernels would get identical gradients and never diverge.

So the inflated layer is the static conv, exactly (up to float rounding), until it is trained.
A static bias ``[out]`` loads into an ODConv2d built with ``bias=True`` as it is.
"""
from typing import Dict

import torch

SIGMOID_HEADS = ('channel_fc', 'filter_fc', 'spatial_fc')


def is_static_weight(weight: torch.Tensor, conv) -> bool:
    """``weight`` is a static conv kernel [out, in/g, k, k] of the shape ``conv``'s kernels have."""
    return isinstance(weight, torch.Tensor) and weight.shape == conv.weight.shape[1:]


def inflate_static_weight(weight: torch.Tensor, conv) -> torch.Tensor:
    """The [K, out, in/g, k, k] kernels of ``conv`` (an ODConv2d) that reproduce ``weight``."""
    sigmoid_attentions = sum(getattr(conv.attention, head) is not None for head in SIGMOID_HEADS)
    kernel = weight.to(conv.weight.dtype) * 2.0 ** sigmoid_attentions
    return kernel.unsqueeze(0).repeat(conv.kernel_num, 1, 1, 1, 1)


def static_equivalent_attention(conv, prefix: str = '') -> Dict[str, torch.Tensor]:
    """``conv.attention``'s state dict (keys under ``prefix``) with zero sigmoid heads."""
    state = {}
    for key, value in conv.attention.state_dict().items():
        head = key.split('.', 1)[0]
        state[prefix + key] = torch.zeros_like(value) if head in SIGMOID_HEADS else value.clone()
    return state
