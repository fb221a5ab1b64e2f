"""OD-MobileNetV2: mmdet's MobileNetV2 with ODConv everywhere but the first 3x3 stem conv.

As in the official OD-MobileNetV2, the expand, depthwise and linear convs of every inverted
residual block and the last 1x1 conv (``conv2``) are ODConv; the stem ``conv1`` is static.
"""
from mmcv.cnn import ConvModule
from mmdet.models.backbones.mobilenet_v2 import MobileNetV2
from mmdet.registry import MODELS

from ..layers.odconv import ODConv2d
from .conv_conversion import attention_norm_following
from .checkpoint_keys import check_checkpoint_keys
from .inflation_log import log_inflated_convs
from .scriptable import ScriptableMobileNetV2


@MODELS.register_module()
class ODMobileNetV2(MobileNetV2):
    """MobileNetV2 with ODConv (Li et al., ICLR 2022).

    Args:
        kernel_num (int): K, candidate kernels per ODConv. Default: 1.
        reduction (float): attention width ratio. Default: 1/16.
        attention_norm (str, optional): norm of the attention branch, see ``ODConvAttention``.
            Default None: follows ``norm_cfg`` (GN gives 'GN', BN and SyncBN the official 'BN').
        attentions (Sequence[str], optional): the attentions each ODConv computes, a subset of
            ('spatial', 'channel', 'filter', 'kernel'). Default: all.
        **kwargs: every argument of mmdet's ``MobileNetV2`` (widen_factor, out_indices,
            frozen_stages, norm_eval, ...). ``conv_cfg`` is not accepted: the convs are ODConv.
    """

    def __init__(self, kernel_num=1, reduction=0.0625, attention_norm=None, attentions=None, **kwargs):
        if kwargs.get('conv_cfg') is not None:
            raise ValueError('ODMobileNetV2 builds its convs as ODConv; conv_cfg must not be set')
        self.kernel_num = kernel_num
        self.reduction = reduction
        if attention_norm is None:  # mmdet's MobileNetV2 defaults to BN
            norm_type = kwargs.get('norm_cfg', dict(type='BN'))['type']
            attention_norm = attention_norm_following([MODELS.get(norm_type) if isinstance(norm_type, str) else norm_type])
        odconv_cfg = dict(type=ODConv2d, kernel_num=kernel_num, reduction=reduction,
                          attention_norm=attention_norm, attentions=attentions)
        super().__init__(conv_cfg=odconv_cfg, **kwargs)
        # The stem stays a static conv, as in the official model: rebuild it without conv_cfg.
        stem = self.conv1
        self.conv1 = ConvModule(stem.in_channels, stem.out_channels, kernel_size=3, stride=2,
                                padding=1, conv_cfg=None, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        self.conv_cfg = odconv_cfg
        self._freeze_stages()
        self.register_load_state_dict_post_hook(log_inflated_convs)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        check_checkpoint_keys(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def __prepare_scriptable__(self):
        """``torch.jit.script(backbone)`` scripts this view, which shares every parameter (see
        ``backbones/scriptable.py``); it returns the out_indices features as a list."""
        return ScriptableMobileNetV2(self)
