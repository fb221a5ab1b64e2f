"""``ODConvBackbone``: any mmdet backbone with ODConv in its blocks, keeping its static weights.

    backbone=dict(type='ODConvBackbone', kernel_num=4,
                  backbone=dict(type='ResNeXt', depth=50, groups=32, base_width=4, ...,
                                init_cfg=dict(type='Pretrained', checkpoint='resnext50.pth')))

The inner backbone is built as configured, then its convs are converted by the official topology
(``conv_conversion.py``) or by ``include`` / ``exclude`` patterns. Its ``init_cfg`` (static
weights) loads through ODConv's inflation, so the converted backbone starts out computing the
static one. Forward, ``out_indices``, ``frozen_stages``, ``norm_eval`` and ``train()`` are the
inner backbone's: the wrapper only delegates.
"""
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmdet.registry import MODELS

from ..layers import CondConv2d, DyConv2d, ODConv2d
from .conv_conversion import attention_norm_following, convert_convs, select_odconv_names, static_convs
from .checkpoint_keys import check_checkpoint_keys
from .inflation_log import log_inflated_convs


CONV_TYPES = {'ODConv': ODConv2d, 'CondConv': CondConv2d, 'DyConv': DyConv2d}


@MODELS.register_module()
class ODConvBackbone(BaseModule):
    """Wraps a backbone config and turns its block convs into ODConv.

    Args:
        backbone (dict): config of any mmdet backbone (its ``init_cfg`` may be static weights),
            built from mmdet's registry in any default scope (``_scope_`` in it picks another).
        kernel_num (int): K, candidate kernels per layer. Default: 4.
        reduction (float, optional): attention width ratio. Default None: the layer's own
            (ODConv 1/16 with A >= 16, DyConv 1/4; CondConv has none).
        attention_norm (str, optional): ODConv's attention norm, see ``ODConvAttention``.
            Default None: follows the inner backbone's norms (all per-sample, e.g. GN: 'GN';
            else the official 'BN'; ``conv_conversion.attention_norm_following``).
        attentions (Sequence[str], optional): ODConv's attentions, a subset of ('spatial',
            'channel', 'filter', 'kernel'). Default None: all.
        conv_type (str): 'ODConv' (default), or one of the dynamic convs it generalises:
            'CondConv' (sigmoid routing) or 'DyConv' (softmax attention with temperature).
        include (list[str], optional): fnmatch patterns of conv module names (as in the inner
            backbone's ``named_modules()``) to convert instead of the default rule.
        exclude (list[str], optional): patterns of convs to keep static.
        init_cfg: of the wrapper itself; normally None (the inner backbone's applies).
    """

    def __init__(self, backbone, kernel_num=4, reduction=None, attention_norm=None, attentions=None,
                 include=None, exclude=None, conv_type='ODConv', init_cfg=None):
        super().__init__(init_cfg)
        if conv_type not in CONV_TYPES:
            raise ValueError(f'ODConvBackbone: conv_type must be one of {sorted(CONV_TYPES)}, got {conv_type!r}')
        if conv_type != 'ODConv':
            given = [name for name, value in (('attention_norm', attention_norm), ('attentions', attentions),
                                              ('reduction', reduction if conv_type == 'CondConv' else None))
                     if value is not None]
            if given:
                raise ValueError(f'ODConvBackbone: {given} do not apply to conv_type={conv_type!r}')
        if not isinstance(backbone, dict) or 'type' not in backbone:
            raise TypeError(f'ODConvBackbone: backbone must be a backbone config dict with a type, got {backbone!r}')
        # an mmdet backbone from any scope (mmpretrain's has a ResNet of its own, whose blocks the
        # default rule does not know); '_scope_' in the config picks another toolbox's
        self.backbone = MODELS.build(dict(backbone, _scope_=backbone.get('_scope_', 'mmdet')))
        layer_kwargs = dict(kernel_num=kernel_num)
        if reduction is not None:
            layer_kwargs['reduction'] = reduction
        if conv_type == 'ODConv':
            if attention_norm is None:
                attention_norm = attention_norm_following(type(m) for m in self.backbone.modules())
            layer_kwargs.update(attention_norm=attention_norm, attentions=attentions)
        CONV_TYPES[conv_type](16, 16, 3, **layer_kwargs)  # validates the arguments up front
        names = select_odconv_names(self.backbone, include, exclude)
        if not names:
            kind = f'{type(self.backbone).__module__}.{type(self.backbone).__name__}'
            raise ValueError(f'ODConvBackbone: include / exclude leave no conv of {kind} to convert'
                             if include is not None or exclude else
                             f'ODConvBackbone: no conv of {kind} lies in a residual block that the default '
                             f"rule knows (mmdet's BasicBlock, Bottleneck, InvertedResidual, CSP blocks); "
                             f'name its convs with include=[...]')
        converted, refused = convert_convs(self.backbone, names, layer_class=CONV_TYPES[conv_type], **layer_kwargs)
        static = list(static_convs(self.backbone))
        kind = type(self.backbone).__name__
        settings = ', '.join(f'{key}={value}' for key, value in layer_kwargs.items() if value is not None)
        print_log(f'ODConvBackbone({kind}): {len(converted)} convs became {conv_type} ({settings}): '
                  f'{", ".join(converted)}', logger='current')
        print_log(f'ODConvBackbone({kind}): {len(static)} convs stay static: '
                  + ', '.join(f'{n} ({refused[n]})' if n in refused else n for n in static), logger='current')
        self.register_load_state_dict_post_hook(log_inflated_convs)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Static weights of the bare backbone (``layer1.0.conv1.weight``, or in a whole static
        detector ``backbone.layer1.0.conv1.weight``) load as the inner backbone's
        (``backbone.backbone.layer1...``): the wrapper has no parameters of its own."""
        inner = prefix + 'backbone.'
        check_checkpoint_keys(self, state_dict, prefix, optional_prefix='backbone.')
        for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(inner)]:
            state_dict[inner + key[len(prefix):]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x):
        return self.backbone(x)
