"""OD-ResNet: mmdet's ResNet with ODConv inside the residual blocks.

As in the official OD-ResNet, every 1x1 and 3x3 conv *inside* a residual block is ODConv, while
the 7x7 stem, the 1x1 projection shortcuts (``downsample``) and everything outside the blocks
stay static. Parameter names are those of mmdet's (= torchvision's) ResNet, so official
checkpoints load after stripping ``module.`` (mmengine's ``load_checkpoint`` does that).
"""
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck, ResNet
from mmdet.registry import MODELS

from ..layers.odconv import ODConv2d
from .scriptable import ScriptableResNet


class _ODConvBlockMixin:
    """Builds the block's own convs from ``odconv_cfg``.

    mmdet's ResLayer passes one ``conv_cfg`` to both the blocks and their downsample shortcut;
    the ResNet gives it ``conv_cfg`` (static) for the shortcut, and the block swaps in
    ``odconv_cfg`` for its own convs.
    """

    def __init__(self, *args, odconv_cfg, conv_cfg=None, **kwargs):
        super().__init__(*args, conv_cfg=odconv_cfg, **kwargs)


class ODBasicBlock(_ODConvBlockMixin, BasicBlock):
    pass


class ODBottleneck(_ODConvBlockMixin, Bottleneck):
    pass


OD_BLOCKS = {BasicBlock: ODBasicBlock, Bottleneck: ODBottleneck}


@MODELS.register_module()
class ODResNet(ResNet):
    """ResNet whose residual-block convs are ODConv (Li et al., ICLR 2022).

    Args:
        kernel_num (int): K, candidate kernels per ODConv. Default: 1.
        reduction (float): attention width ratio (A = max(int(C * reduction), 16)). Default: 1/16.
        stage_with_odconv (Sequence[bool]): per stage, ODConv blocks (True) or plain ResNet
            blocks (False). Default: all True.
        attention_norm (str): norm of the attention branch, see ``ODConvAttention``.
        **kwargs: every argument of mmdet's ``ResNet``. ``norm_eval=True`` also freezes the
            attention BatchNorms (they are BatchNorm2d subclasses), as the official detection
            code does; ``frozen_stages`` freezes the ODConv layers of those stages.
    """

    def __init__(self, depth, kernel_num=1, reduction=0.0625,
                 stage_with_odconv=(True, True, True, True), attention_norm='BN', **kwargs):
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
        # Read by make_res_layer, which ResNet.__init__ calls once per stage.
        self.stage_with_odconv = tuple(bool(s) for s in stage_with_odconv)
        self.kernel_num = kernel_num
        self.reduction = reduction
        self.odconv_cfg = dict(type=ODConv2d, kernel_num=kernel_num, reduction=reduction,
                               attention_norm=attention_norm)
        ODConv2d(16, 16, 1, kernel_num=kernel_num, reduction=reduction,
                 attention_norm=attention_norm)  # validates the ODConv arguments up front
        super().__init__(depth, **kwargs)

    def make_res_layer(self, **kwargs):
        stage = len(self.res_layers)  # ResNet appends each stage after building it
        if self.stage_with_odconv[stage]:
            kwargs['block'] = OD_BLOCKS[kwargs['block']]
            kwargs['odconv_cfg'] = self.odconv_cfg
        return super().make_res_layer(**kwargs)

    def __prepare_scriptable__(self):
        """``torch.jit.script(backbone)`` scripts this view, which shares every parameter (see
        ``backbones/scriptable.py``); it returns the out_indices features as a list."""
        return ScriptableResNet(self)
