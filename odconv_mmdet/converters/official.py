"""Map official ODConv ImageNet checkpoints (OSVAI/ODConv) onto this project's backbones.

* OD-ResNet: the official model uses torchvision's ResNet names, which mmdet's ResNet (and so
  ``ODResNet``) shares; only the DataParallel ``module.`` prefix and the ``fc`` classifier go.
* OD-MobileNetV2: the official model is torchvision-style (``features.N...``); it is renamed to
  mmdet's MobileNetV2 names (``conv1``, ``layer{i}.{j}.{expand,depthwise,linear}_conv``, ``conv2``)
  and the ``classifier`` goes.
"""
import re
from collections import OrderedDict

import torch

# mmdet MobileNetV2: (expand_ratio, channels, num_blocks, stride) per layer.
MOBILENET_V2_BLOCKS = [1, 2, 3, 4, 3, 3, 1]
MOBILENET_V2_EXPANDS = [1, 6, 6, 6, 6, 6, 6]


class UnrecognisedCheckpoint(ValueError):
    pass


def extract_state_dict(checkpoint):
    """The tensors of a checkpoint file's content, with a DataParallel ``module.`` prefix removed."""
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get('state_dict'), dict):
        checkpoint = checkpoint['state_dict']
    elif isinstance(checkpoint, dict) and isinstance(checkpoint.get('model'), dict):
        checkpoint = checkpoint['model']
    if not isinstance(checkpoint, dict) or not checkpoint or \
            not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise UnrecognisedCheckpoint('the file holds no state_dict of tensors '
                                     '(expected a dict of tensors, or one under "state_dict"/"model")')
    return OrderedDict((re.sub(r'^module\.', '', k), v) for k, v in checkpoint.items())


def strip_detector_prefix(state_dict):
    """A whole mmdet detector's backbone weights without their ``backbone.`` prefix (the rest of
    the detector dropped); a state_dict with no such key comes back as it is."""
    if any(k.startswith('backbone.') for k in state_dict):
        return OrderedDict((k[len('backbone.'):], v) for k, v in state_dict.items() if k.startswith('backbone.'))
    return state_dict


def detect_architecture(state_dict):
    if 'conv1.weight' in state_dict and 'layer1.0.conv1.weight' in state_dict:
        return 'resnet'
    if 'features.0.0.weight' in state_dict and 'features.1.conv.0.0.weight' in state_dict:
        return 'mobilenet_v2'
    if 'conv1.conv.weight' in state_dict and 'layer1.0.depthwise_conv.conv.weight' in state_dict:
        raise UnrecognisedCheckpoint('this checkpoint already uses mmdet MobileNetV2 names')
    sample = ', '.join(list(state_dict)[:5])
    raise UnrecognisedCheckpoint('not an official OD-ResNet or OD-MobileNetV2 checkpoint: expected '
                                 '"layer1.0.conv1.weight" (ResNet) or "features.1.conv.0.0.weight" '
                                 f'(MobileNetV2) among its keys; the first keys are: {sample}')


def mobilenet_v2_renames():
    """Prefix renames official/torchvision MobileNetV2 -> mmdet MobileNetV2, for the 17 blocks."""
    renames = [('features.0.0.', 'conv1.conv.'), ('features.0.1.', 'conv1.bn.'),
               ('features.18.0.', 'conv2.conv.'), ('features.18.1.', 'conv2.bn.')]
    index = 1
    for layer, (num_blocks, expand) in enumerate(zip(MOBILENET_V2_BLOCKS, MOBILENET_V2_EXPANDS), 1):
        for block in range(num_blocks):
            src, dst = f'features.{index}.conv.', f'layer{layer}.{block}.'
            parts = ['expand_conv', 'depthwise_conv'] if expand != 1 else ['depthwise_conv']
            for i, part in enumerate(parts):
                renames += [(f'{src}{i}.0.', f'{dst}{part}.conv.'), (f'{src}{i}.1.', f'{dst}{part}.bn.')]
            n = len(parts)
            renames += [(f'{src}{n}.', f'{dst}linear_conv.conv.'), (f'{src}{n + 1}.', f'{dst}linear_conv.bn.')]
            index += 1
    return renames


def rename_mobilenet_v2_key(key, renames):
    """The mmdet name of a torchvision/official MobileNetV2 key, or None if no rule covers it."""
    for src, dst in renames:
        if key.startswith(src):
            return dst + key[len(src):]
    return None


def convert_official(checkpoint):
    """Returns (architecture, backbone state_dict, list of (old, new) key pairs, dropped keys)."""
    state_dict = extract_state_dict(checkpoint)
    arch = detect_architecture(state_dict)
    converted, mapping, dropped = OrderedDict(), [], []
    if arch == 'resnet':
        for key, value in state_dict.items():
            if key.startswith('fc.'):
                dropped.append(key)
            else:
                converted[key] = value
                mapping.append((key, key))
        return arch, converted, mapping, dropped
    renames = mobilenet_v2_renames()
    for key, value in state_dict.items():
        if key.startswith('classifier.'):
            dropped.append(key)
            continue
        new = rename_mobilenet_v2_key(key, renames)
        if new is None:
            raise UnrecognisedCheckpoint(f'official MobileNetV2 checkpoint has an unexpected key {key!r}')
        converted[new] = value
        mapping.append((key, new))
    return arch, converted, mapping, dropped
