"""OD-ResNet: mmdet's ResNet with ODConv inside the residual blocks.

As in the official OD-ResNet, every 1x1 and 3x3 conv *inside* a residual block is ODConv, while
the 7x7 stem, the 1x1 projection shortcuts (``downsample``) and everything outside the blocks
stay static: the ResNet is built, then converted by the rule of ``conv_conversion.py``, which
``ODConvBackbone`` applies to any backbone. Parameter names are those of mmdet's
(= torchvision's) ResNet, so official checkpoints load after stripping ``module.`` (mmengine's
``load_checkpoint`` does that).
"""
import re

from mmdet.models.backbones.resnet import ResNet
from mmdet.registry import MODELS

from ..layers.odconv import ODConv2d
from .conv_conversion import attention_norm_following, convert_convs, default_odconv_names
from .checkpoint_keys import check_checkpoint_keys
from .inflation_log import log_inflated_convs
from .scriptable import ScriptableResNet


@MODELS.register_module()
class ODResNet(ResNet):
    """ResNet whose residual-block convs are ODConv (Li et al., ICLR 2022).

    Args:
        kernel_num (int): K, candidate kernels per ODConv. Default: 1.
        reduction (float): attention width ratio (A = max(int(C * reduction), 16)). Default: 1/16.
        stage_with_odconv (Sequence[bool]): per stage, ODConv blocks (True) or plain ResNet
            blocks (False). Default: all True.
        attention_norm (str, optional): norm of the attention branch, see ``ODConvAttention``.
            Default None: follows ``norm_cfg`` (GN gives the per-sample 'GN', BN and SyncBN
            the official 'BN'; ``conv_conversion.attention_norm_following``).
        attentions (Sequence[str], optional): the attentions each ODConv computes, a subset of
            ('spatial', 'channel', 'filter', 'kernel') (the paper's ablations). Default: all.
        **kwargs: every argument of mmdet's ``ResNet``. ``norm_eval=True`` also freezes the
            attention BatchNorms (they are BatchNorm2d subclasses), as the official detection
            code does; ``frozen_stages`` freezes the ODConv layers of those stages.
    """

    def __init__(self, depth, kernel_num=1, reduction=0.0625,
                 stage_with_odconv=(True, True, True, True), attention_norm=None, attentions=None, **kwargs):
        num_stages = kwargs.get('num_stages', 4)
        if len(stage_with_odconv) != num_stages:
            raise ValueError(f'ODResNet: stage_with_odconv needs one flag per stage ({num_stages}), '
                             f'got {tuple(stage_with_odconv)}')
        if kwargs.get('dcn') is not None:
            clash = [i for i, (od, dcn) in enumerate(zip(stage_with_odconv, kwargs.get(
                'stage_with_dcn', (False,) * num_stages))) if od and dcn]
            if clash:
                raise ValueError(f'ODResNet: stages {clash} ask for both ODConv and DCN; '
                                 'set stage_with_odconv False there')
        self.kernel_num = kernel_num
        self.reduction = reduction
        # validates the ODConv arguments up front
        ODConv2d(16, 16, 1, kernel_num=kernel_num, reduction=reduction, attention_norm=attention_norm or 'BN',
                 attentions=attentions)
        super().__init__(depth, **kwargs)
        if attention_norm is None:
            attention_norm = attention_norm_following(type(m) for m in self.modules())
        odconv_kwargs = dict(kernel_num=kernel_num, reduction=reduction, attention_norm=attention_norm,
                             attentions=attentions)
        # The rule ODConvBackbone applies to any backbone, per stage, to the blocks' own convs
        # (convs of block plugins stay static).
        stages = [i + 1 for i, od in enumerate(stage_with_odconv) if od]
        names = [n for n in default_odconv_names(self)
                 if (m := re.fullmatch(r'layer(\d+)\.\d+\.conv[123]', n)) and int(m.group(1)) in stages]
        convert_convs(self, names, **odconv_kwargs)
        self.register_load_state_dict_post_hook(log_inflated_convs)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        check_checkpoint_keys(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def __prepare_scriptable__(self):
        """``torch.jit.script(backbone)`` scripts this view, which shares every parameter (see
        ``backbones/scriptable.py``); it returns the out_indices features as a list."""
        return ScriptableResNet(self)
