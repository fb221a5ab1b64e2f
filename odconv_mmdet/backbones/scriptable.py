"""TorchScript views of the OD backbones.

mmdet's ResNet and MobileNetV2 cannot be scripted as they are: their forwards look modules up
by computed names (``getattr(self, self.norm1_name)``) and wrap blocks in closures for
checkpointing. ``torch.jit.script(backbone)`` calls ``backbone.__prepare_scriptable__()``
first; the OD backbones answer with one of these views. A view holds the *same* submodules
(no copy: parameters and buffers are shared) in fixed attributes, and
its forward computes what the backbone's eval forward computes, returning a list of the
``out_indices`` feature maps. Its state_dict keys are the view's own (``stages.0.1.conv2...``).
A script holds its own copy of each ODConv temperature: set it with
``odconv_mmdet.layers.set_temperature(scripted, t)``.

A script's ``train()`` sets every submodule to training mode: mmdet's ``norm_eval`` and
``frozen_stages`` are not replayed (scripts are for deployment, in eval mode). Gradient
checkpointing (``with_cp``) is ignored by a script; plugins, DCN and SE blocks are
refused with a clear error.
"""
from typing import List

import torch
import torch.nn as nn


def _refuse(condition: bool, what: str) -> None:
    if condition:
        raise ValueError(f'torch.jit.script of this backbone: {what} is not supported in the scripted view')


class ScriptableResBlock(nn.Module):
    """BasicBlock or Bottleneck of mmdet's ResNet (static or OD)."""

    def __init__(self, block: nn.Module):
        super().__init__()
        _refuse(getattr(block, 'with_plugins', False), 'a block with plugins')
        _refuse(getattr(block, 'with_dcn', False), 'a DCN block')
        self.bottleneck = hasattr(block, 'conv3')
        self.conv1, self.norm1 = block.conv1, block.norm1
        self.conv2, self.norm2 = block.conv2, block.norm2
        self.conv3 = block.conv3 if self.bottleneck else nn.Identity()
        self.norm3 = block.norm3 if self.bottleneck else nn.Identity()
        self.relu = block.relu
        self.downsample = block.downsample if block.downsample is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        if self.bottleneck:
            out = self.norm3(self.conv3(self.relu(out)))
        return self.relu(out + self.downsample(x))


class ScriptableStages(nn.Module):
    """stem, then stages in order; returns the outputs of the stages in out_indices."""

    def __init__(self, stem: nn.Module, stages: List[nn.Module], out_indices):
        super().__init__()
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.out_indices: List[int] = [int(i) for i in out_indices]

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = self.stem(x)
        outs: List[torch.Tensor] = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return outs


class ScriptableResNet(ScriptableStages):
    def __init__(self, net: nn.Module):
        stem = [net.stem] if net.deep_stem else [net.conv1, net.norm1, net.relu]
        stages = [nn.Sequential(*[ScriptableResBlock(block) for block in getattr(net, name)])
                  for name in net.res_layers]
        super().__init__(nn.Sequential(*stem, net.maxpool), stages, net.out_indices)


def conv_module_sequence(module: nn.Module) -> nn.Sequential:
    """mmcv's ConvModule (conv -> norm -> act order only) as a plain Sequential."""
    _refuse(tuple(module.order) != ('conv', 'norm', 'act'), f'ConvModule order {module.order}')
    _refuse(module.with_explicit_padding, 'ConvModule explicit padding')
    layers = [module.conv]
    if module.with_norm:
        layers.append(module.norm)
    if module.with_activation:
        layers.append(module.activate)
    return nn.Sequential(*layers)


class ScriptableInvertedResidual(nn.Module):
    def __init__(self, block: nn.Module):
        super().__init__()
        _refuse(block.with_se, 'an SE block')
        _refuse(not isinstance(block.drop_path, nn.Identity), 'drop path')
        self.with_res_shortcut = bool(block.with_res_shortcut)
        convs = [block.expand_conv] if block.with_expand_conv else []
        convs += [block.depthwise_conv, block.linear_conv]
        self.conv = nn.Sequential(*[conv_module_sequence(m) for m in convs])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.with_res_shortcut else out


class ScriptableMobileNetV2(ScriptableStages):
    def __init__(self, net: nn.Module):
        stages = []
        for name in net.layers:
            layer = getattr(net, name)
            if isinstance(layer, nn.Sequential):
                stages.append(nn.Sequential(*[ScriptableInvertedResidual(b) for b in layer]))
            else:  # the final 1x1 ConvModule ('conv2')
                stages.append(conv_module_sequence(layer))
        super().__init__(conv_module_sequence(net.conv1), stages, net.out_indices)
