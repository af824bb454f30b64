"""Linear probing: mmpretrain's ``ImageClassifier`` with the whole backbone frozen."""
from typing import Tuple

import torch
from mmpretrain.models.classifiers import ImageClassifier

from mmmamba.registry import MODELS


@MODELS.register_module()
class LinearProbeClassifier(ImageClassifier):
    """An ``ImageClassifier`` whose backbone is frozen entirely, for linear evaluation of a
    pre-trained representation (the DINO / MAE protocol): every backbone parameter has
    ``requires_grad=False``, the backbone stays in eval mode in ``train()`` (no drop path, no
    BatchNorm statistics updates) and runs under ``torch.no_grad()``; only the neck (e.g.
    pooling and ``ClsBatchNormNeck``) and the head train.

    The backbones' own ``frozen_stages`` leave their output norms trainable (dense models
    fine-tune them), which a linear probe must not; hence this class. Arguments are
    ``ImageClassifier``'s.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for param in self.backbone.parameters():
            param.requires_grad = False

    def train(self, mode: bool = True) -> 'LinearProbeClassifier':
        super().train(mode)
        self.backbone.eval()
        return self

    def extract_feat(self, inputs: torch.Tensor, stage: str = 'neck') -> Tuple[torch.Tensor]:
        if stage not in ('backbone', 'neck', 'pre_logits'):
            raise ValueError(f"stage must be 'backbone', 'neck' or 'pre_logits', got {stage!r}")
        with torch.no_grad():
            x = self.backbone(inputs)
        if stage == 'backbone':
            return x
        if self.with_neck:
            x = self.neck(x)
        if stage == 'neck':
            return x
        return self.head.pre_logits(x)
