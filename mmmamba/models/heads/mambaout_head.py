"""The MLP classification head of MambaOut, for mmpretrain classifiers.

Paper: Yu & Wang, "MambaOut: Do We Really Need Mamba for Vision?", https://arxiv.org/abs/2405.07992
"""
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
from mmpretrain.models.heads import ClsHead

from mmmamba.registry import MODELS


@MODELS.register_module()
class MambaOutHead(ClsHead):
    """MLP head: fc (C -> mlp_ratio * C) → GELU → LN → dropout → fc (-> num_classes).

    It takes the pooled and normalised features of ``MambaOut(gap_before_final_norm=True)``
    (the pooling and the norm before this MLP live in the backbone as ``norm{last}``), e.g.::

        model = dict(
            type='ImageClassifier',
            backbone=dict(type='mmmamba.MambaOut', arch='tiny', out_indices=(3, ),
                          gap_before_final_norm=True),
            head=dict(type='mmmamba.MambaOutHead', num_classes=1000, in_channels=576,
                      loss=dict(type='CrossEntropyLoss')))

    Keys: ``fc1``, ``norm``, ``fc2`` (as in the official release).

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Channels of the last backbone stage.
        mlp_ratio (float): Hidden width relative to ``in_channels``. Defaults to 4.
        dropout_rate (float): Dropout before the last fc. Defaults to 0.
        loss (dict): Classification loss, built in mmpretrain's registry. Defaults to
            ``dict(type='CrossEntropyLoss', loss_weight=1.0)``.
        init_cfg (dict | list[dict], optional): Initialisation. Defaults to truncated-normal
            (std 0.02) Linear weights with zero biases and unit LayerNorm.
        **kwargs: Other arguments of mmpretrain's ``ClsHead`` (``topk``, ``cal_acc``).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 mlp_ratio: float = 4.,
                 dropout_rate: float = 0.,
                 loss: dict = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 init_cfg: Optional[Union[dict, list]] = [
                     dict(type='TruncNormal', layer='Linear', std=.02, bias=0.),
                     dict(type='Constant', layer='LayerNorm', val=1., bias=0.),
                 ],
                 **kwargs) -> None:
        super().__init__(loss=loss, init_cfg=init_cfg, **kwargs)
        if num_classes <= 0:
            raise ValueError(f'num_classes must be positive, got {num_classes}')
        self.num_classes = num_classes
        self.in_channels = in_channels
        hidden = int(mlp_ratio * in_channels)
        self.fc1 = nn.Linear(in_channels, hidden)
        self.act = nn.GELU()
        self.norm = nn.LayerNorm(hidden, eps=1e-6)
        self.dropout = nn.Dropout(dropout_rate)
        self.fc2 = nn.Linear(hidden, num_classes)

    def pre_logits(self, feats: Tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The hidden features before the last fc.

        Args:
            feats (tuple[torch.Tensor]): Backbone outputs; the last one, (B, in_channels), is
                used.

        Returns:
            torch.Tensor: (B, mlp_ratio * in_channels).
        """
        x = feats[-1]
        if x.dim() != 2:
            raise ValueError(f'MambaOutHead takes pooled (B, C) features, got shape '
                             f'{tuple(x.shape)}; build the backbone with '
                             f'gap_before_final_norm=True')
        return self.dropout(self.norm(self.act(self.fc1(x))))

    def forward(self, feats: Tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Class scores (B, num_classes) from the backbone outputs."""
        return self.fc2(self.pre_logits(feats))
