"""Is ODConv's attention input-dependent, or has it collapsed? Per-stage statistics of the
attentions that every ODConv layer computed in one forward pass.

* ``kernel_entropy``: mean over samples and the stage's layers of the kernel attention's
  entropy, in nats (0: one kernel takes all; log K: uniform, e.g. 1.386 for K = 4).
* ``channel_spread`` / ``filter_spread``: the standard deviation across the batch's samples of
  each channel's (filter's) attention, averaged over channels and layers (0: every sample gets
  the same attention, i.e. it does not depend on the input). Needs at least 2 samples.

A layer's stage is its module path up to the first part followed by a block index
(``backbone.layer2.1.conv2`` -> ``backbone.layer2``, ``neck.fpn_convs.0.conv`` ->
``neck.fpn_convs``); a leading ``module.`` (DDP) is dropped.
"""
import re
from collections import defaultdict
from typing import Dict, List

import torch
import torch.nn as nn

from ..layers.odconv import odconv_layers


def stage_of(name: str) -> str:
    parts = name.split('.')
    if parts and parts[0] == 'module':
        parts = parts[1:]
    for i, part in enumerate(parts[:-1]):
        if re.fullmatch(r'\d+', parts[i + 1]):
            return '.'.join(parts[:i + 1])
    return '.'.join(parts[:-1]) or name


class AttentionRecorder:
    """Records, while active, the attentions of every ODConv layer of ``model`` (forward hooks on
    their attention modules); ``statistics()`` then summarises them per stage."""

    def __init__(self, model: nn.Module):
        ids = {id(layer) for layer in odconv_layers(model)}
        self._layers = {name: module for name, module in model.named_modules() if id(module) in ids}
        self._records: Dict[str, tuple] = {}
        self._handles: List = []

    def __enter__(self):
        for name, layer in self._layers.items():
            self._handles.append(layer.attention.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hook(self, name):
        def record(module, inputs, outputs):
            self._records[name] = tuple(None if t is None else t.detach() for t in outputs)
        return record

    @property
    def records(self) -> Dict[str, tuple]:
        """layer name -> its attentions (channel, filter, spatial, kernel) of the last forward."""
        return dict(self._records)

    def statistics(self) -> Dict[str, Dict[str, float]]:
        return attention_statistics(self._records)


def attention_statistics(records: Dict[str, tuple]) -> Dict[str, Dict[str, float]]:
    """``records``: layer name -> (channel [B, in, 1, 1], filter [B, out, 1, 1] or None, spatial,
    kernel [B, K] or None), as ODConvAttention returns them."""
    per_stage = defaultdict(lambda: defaultdict(list))
    for name, (channel, filter_att, _, kernel) in records.items():
        values = per_stage[stage_of(name)]
        if kernel is not None and kernel.size(0) > 0:
            p = kernel.float()
            entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(dim=1)
            values['kernel_entropy'].append(entropy.mean().item())
        for key, attention in (('channel_spread', channel), ('filter_spread', filter_att)):
            if attention is not None and attention.size(0) >= 2:
                values[key].append(attention.float().flatten(1).std(dim=0, unbiased=False).mean().item())
    return {stage: {key: sum(v) / len(v) for key, v in values.items()} for stage, values in per_stage.items()
            if values}
