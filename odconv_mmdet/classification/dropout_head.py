"""mmpretrain's linear head with dropout before the classifier, as the official ODConv recipe
trains (dropout 0.2 on the pooled features); mmpretrain's ``LinearClsHead`` has none."""
import torch.nn as nn
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.registry import MODELS


@MODELS.register_module()
class DropoutLinearClsHead(LinearClsHead):
    """``LinearClsHead`` whose pooled features pass ``nn.Dropout(dropout_rate)`` before ``fc``.

    Args:
        dropout_rate (float): in [0, 1). Default: 0.2 (the official ODConv recipe).
        **kwargs: every argument of ``LinearClsHead``.
    """

    def __init__(self, *args, dropout_rate=0.2, **kwargs):
        if isinstance(dropout_rate, bool) or not isinstance(dropout_rate, (int, float)) or not 0 <= dropout_rate < 1:
            raise ValueError(f'DropoutLinearClsHead: dropout_rate must be a number in [0, 1), got {dropout_rate!r}')
        super().__init__(*args, **kwargs)
        self.dropout = nn.Dropout(dropout_rate)

    def pre_logits(self, feats):
        return self.dropout(super().pre_logits(feats))
