"""Refuse a checkpoint that would load nothing into a backbone, naming the prefix it needs.

mmengine's ``Pretrained`` init and ``load_checkpoint`` load with ``strict=False``: a classifier's
checkpoint (keys ``backbone.layer1...``, as mmpretrain writes them) loaded without
``prefix='backbone.'`` would leave every weight untouched and only log the mismatch. Checked at
the root of a load only (``prefix == ''``): inside a whole model's load, a checkpoint without
backbone weights may be meant.
"""
from collections import Counter


def check_checkpoint_keys(module, state_dict, prefix, optional_prefix=None):
    """Raise ``ValueError`` when the non-empty ``state_dict`` loaded into ``module`` itself holds
    none of ``module``'s state-dict keys. ``optional_prefix``: a prefix of those keys that a
    checkpoint may leave out (ODConvBackbone loads its inner backbone's bare keys)."""
    if prefix or not state_dict:
        return
    own = set(module.state_dict().keys())
    if optional_prefix:
        own |= {k[len(optional_prefix):] for k in own if k.startswith(optional_prefix)}
    if own & state_dict.keys():
        return
    name = type(module).__name__
    example = sorted(own)[0]
    under = Counter(key[:-len(k)] for key in state_dict for k in own if key.endswith('.' + k))
    if under:
        # the shortest of the most common: ODConvBackbone takes its inner keys bare or under 'backbone.'
        found = min(under, key=lambda p: (-under[p], len(p)))
        raise ValueError(f"{name}: the checkpoint holds this backbone's weights under the prefix '{found}' "
                         f"('{found}{example}'), not at its top level, so nothing would load; load it with "
                         f"init_cfg=dict(type='Pretrained', checkpoint=..., prefix='{found}')")
    heads = sorted({key.split('.', 1)[0] for key in state_dict})
    raise ValueError(f"{name}: the checkpoint holds none of this backbone's {len(own)} weights (e.g. '{example}'), "
                     f'under no prefix either, so nothing would load; its keys begin with {heads[:8]}: is it '
                     f"this backbone's checkpoint, and is init_cfg's prefix the one its weights sit under?")
