"""Inflate a static ResNet / MobileNetV2 checkpoint into an ODConv backbone of any K.

The backbone loads the static weights through ``ODConv2d``'s own inflation (the rule of
``layers/static_inflation.py``, the same that applies when mmengine loads a static checkpoint
into ODConv layers): every static conv seeds all K candidate kernels, scaled by
2 ** (number of sigmoid attentions of the layer), and the sigmoid attention heads start at zero,
so the inflated network computes the static network exactly, at any temperature, until it is
trained. Static parts (stem, shortcuts, norms) are copied as they are.
"""
from collections import OrderedDict

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


def inflate_state_dict(checkpoint, backbone):
    """Load a static checkpoint into ``backbone`` (inflating it) and return its state_dict.

    Returns (state_dict, report) where report has lists ``copied``, ``inflated``, ``initialised``
    (attention parameters the checkpoint lacks) and ``dropped`` (classifier keys).
    """
    static = _to_backbone_names(extract_state_dict(checkpoint))
    dropped = [k for k in static if k.startswith(CLASSIFIER_PREFIXES)]
    static = OrderedDict((k, v) for k, v in static.items() if k not in dropped)
    try:
        result = backbone.load_state_dict(static, strict=False)
    except RuntimeError as e:  # shape mismatches
        raise UnrecognisedCheckpoint(f'the static checkpoint does not fit this backbone (wrong depth, width '
                                     f'or architecture?): {str(e)[:1000]}') from None
    if result.missing_keys or result.unexpected_keys:
        raise UnrecognisedCheckpoint(
            'the static checkpoint does not fit this backbone (wrong depth, width or architecture?): '
            f'{len(result.missing_keys)} missing keys {result.missing_keys[:5]}, '
            f'{len(result.unexpected_keys)} keys it has no place for {result.unexpected_keys[:5]}')
    odconvs = [name for name, m in backbone.named_modules() if isinstance(m, ODConv2d)]
    # a 4-D weight under an ODConv name was a static kernel (a 5-D one loaded as it is)
    inflated = [name + '.weight' for name in odconvs if name + '.weight' in static
                and static[name + '.weight'].dim() == 4]
    state_dict = backbone.state_dict()
    report = dict(inflated=inflated, dropped=dropped,
                  copied=[k for k in static if k not in inflated],
                  initialised=[k for k in state_dict if k not in static])
    return state_dict, report
