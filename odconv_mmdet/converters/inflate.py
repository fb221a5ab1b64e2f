"""Inflate a static ResNet / MobileNetV2 checkpoint into an ODConv backbone of any K.

Every static conv seeds all K candidate kernels of the ODConv that replaces it, scaled by
2 ** (number of sigmoid attentions the layer has: channel, plus filter and spatial where
present). Why: the kernel softmax of K identical kernels is exactly neutral, and at a high
temperature every sigmoid attention tends to 0.5, so the inflated network starts out computing
the static network (exactly in the limit T -> inf, closely at T0 = 30). Annealing T down to 1
then lets the attentions and the K kernels diverge gradually from that pretrained start rather
than from a perturbed one. Static parts (stem, shortcuts, norms) are copied as they are; the
attention branches keep their fresh official initialisation.
"""
from collections import OrderedDict

import torch

from ..layers.odconv import ODConv2d
from .official import (UnrecognisedCheckpoint, extract_state_dict, mobilenet_v2_renames, rename_mobilenet_v2_key,
                       strip_detector_prefix)

CLASSIFIER_PREFIXES = ('fc.', 'classifier.', 'head.')


def _to_backbone_names(state_dict):
    state_dict = strip_detector_prefix(state_dict)  # a whole mmdet detector
    if 'features.0.0.weight' in state_dict:  # torchvision MobileNetV2 -> mmdet names
        renames = mobilenet_v2_renames()
        state_dict = OrderedDict((rename_mobilenet_v2_key(k, renames) or k, v) for k, v in state_dict.items())
    return state_dict


def inflation_scale(conv):
    att = conv.attention
    return 2.0 ** (1 + (att.filter_fc is not None) + (att.spatial_fc is not None))


def inflate_state_dict(checkpoint, backbone):
    """Fill ``backbone``'s state_dict from a static checkpoint.

    Returns (state_dict, report) where report has lists ``copied``, ``inflated``, ``initialised``
    (attention parameters left at their init) and ``dropped`` (classifier keys).
    """
    static = _to_backbone_names(extract_state_dict(checkpoint))
    odconvs = {name: m for name, m in backbone.named_modules() if isinstance(m, ODConv2d)}
    target = backbone.state_dict()
    result = OrderedDict()
    report = dict(copied=[], inflated=[], initialised=[], dropped=[])
    missing, mismatched = [], []
    for key, value in target.items():
        owner = key.rsplit('.', 1)[0]
        if '.attention.' in key and owner.split('.attention')[0] in odconvs:
            result[key] = value
            report['initialised'].append(key)
            continue
        if key not in static:
            missing.append(key)
            continue
        source = static[key]
        if source.shape == value.shape:
            result[key] = source.to(value.dtype).clone()
            report['copied'].append(key)
        elif key.endswith('.weight') and owner in odconvs and source.shape == value.shape[1:]:
            conv = odconvs[owner]
            result[key] = (source.to(value.dtype) * inflation_scale(conv)).unsqueeze(0).repeat(
                conv.kernel_num, 1, 1, 1, 1)
            report['inflated'].append(key)
        else:
            mismatched.append(f'{key}: checkpoint {tuple(source.shape)} vs backbone {tuple(value.shape)}')
    if missing or mismatched:
        raise UnrecognisedCheckpoint(
            'the static checkpoint does not fit this backbone (wrong depth, width or architecture?): '
            f'{len(missing)} missing keys {missing[:5]}, {len(mismatched)} shape mismatches {mismatched[:5]}')
    used = set(report['copied']) | set(report['inflated'])
    for key in static:
        if key not in used:
            if key.startswith(CLASSIFIER_PREFIXES):
                report['dropped'].append(key)
            else:
                raise UnrecognisedCheckpoint(f'the static checkpoint has a key this backbone has no '
                                             f'place for: {key!r}')
    return result, report
