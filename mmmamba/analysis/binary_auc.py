"""Binary-AUC: how well an activation map separates an image's foreground from its background.

Protocol (per image, then averaged over images):

1. The map: a 2-D ``(h, w)`` score per feature-map position — the class token's row of a
   layer's hidden attention ``M`` (or of an attention matrix) restricted to the patch columns,
   or the L2 norm over channels of a layer's feature map (see
   :func:`mmmamba.analysis.activation_maps`). Larger means "more foreground".
2. Resize the map to the mask's size ``(H, W)``: bilinear, ``align_corners=False``
   (``torch.nn.functional.interpolate``); the mask is never resized.
3. The binary mask: a pixel is foreground when its label is not in ``background_labels`` and
   not ``ignore_index``; pixels labelled ``ignore_index`` are left out of the AUC.
4. ROC-AUC of the resized map against the mask, as the Mann-Whitney statistic
   ``(R_fg - n_fg (n_fg + 1) / 2) / (n_fg n_bg)`` with ``R_fg`` the sum of the foreground
   pixels' ranks among all kept pixels; tied scores share their average rank, so a tie
   between a foreground and a background pixel counts ½ (as scikit-learn's
   ``roc_auc_score``).
5. Images whose kept pixels are all foreground or all background have no AUC: they are
   skipped and counted (``skipped``), and the mean is over the others.

A perfect map scores 1, its negation 0, a map independent of the mask 0.5 on average.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from torch import Tensor

from mmmamba.registry import METRICS

__all__ = ['binary_auc', 'resize_map', 'foreground_mask', 'image_auc', 'BinaryAUCMetric']


def binary_auc(scores: Tensor, labels: Tensor) -> float:
    """ROC-AUC of ``scores`` for boolean ``labels`` (any equal shapes), ties at average rank.

    Returns:
        float: The AUC, or ``nan`` when ``labels`` holds one class only.
    """
    scores, labels = torch.as_tensor(scores), torch.as_tensor(labels)
    if scores.shape != labels.shape:
        raise ValueError(f'scores and labels must have the same shape, got {tuple(scores.shape)} '
                         f'and {tuple(labels.shape)}')
    scores = scores.reshape(-1).double()
    labels = labels.reshape(-1).bool()
    if torch.isnan(scores).any():
        raise ValueError('scores contain NaN; an activation map must be finite')
    n_pos = int(labels.sum())
    n_neg = labels.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        return float('nan')
    _, inverse, counts = torch.unique(scores, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()  # 1-based rank of each distinct value's last copy
    average = ends - (counts.double() - 1) / 2  # average 1-based rank of each tie group
    rank_sum = average[inverse][labels].sum().item()
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def resize_map(activation: Tensor, size: Tuple[int, int]) -> Tensor:
    """Bilinear resize (``align_corners=False``) of an ``(h, w)`` map to ``size = (H, W)``."""
    activation = torch.as_tensor(activation)
    if activation.dim() != 2:
        raise ValueError(f'an activation map must be (h, w), got shape '
                         f'{tuple(activation.shape)}')
    return F.interpolate(activation[None, None].double(), size=tuple(size), mode='bilinear',
                         align_corners=False)[0, 0]


def foreground_mask(labels: Tensor, background_labels: Sequence[int] = (0, ),
                    ignore_index: Optional[int] = 255) -> Tuple[Tensor, Tensor]:
    """Foreground (label neither background nor ignored) and kept (not ignored) masks of an
    ``(H, W)`` label map."""
    labels = torch.as_tensor(labels)
    background = torch.zeros_like(labels, dtype=torch.bool)
    for value in background_labels:
        background |= labels == value
    kept = torch.ones_like(background) if ignore_index is None else labels != ignore_index
    return kept & ~background, kept


def image_auc(activation: Tensor, labels: Tensor, background_labels: Sequence[int] = (0, ),
              ignore_index: Optional[int] = 255) -> float:
    """Binary-AUC of one image (steps 2-4 of the module doc); ``nan`` for a one-class image."""
    labels = torch.as_tensor(labels)
    if labels.dim() == 3 and labels.shape[0] == 1:
        labels = labels[0]
    if labels.dim() != 2:
        raise ValueError(f'a label map must be (H, W) or (1, H, W), got shape '
                         f'{tuple(labels.shape)}')
    scores = resize_map(activation, labels.shape)
    foreground, kept = foreground_mask(labels, background_labels, ignore_index)
    return binary_auc(scores[kept], foreground[kept])


def _tensor(value) -> Tensor:
    if isinstance(value, dict):  # a PixelData turned into a dict by the evaluator
        value = value['data']
    elif hasattr(value, 'data') and not isinstance(value, Tensor):
        value = value.data
    return torch.as_tensor(value)


@METRICS.register_module()
class BinaryAUCMetric(BaseMetric):
    """Binary-AUC of activation maps against segmentation masks (protocol: see
    :mod:`mmmamba.analysis.binary_auc`).

    Each data sample needs the map under ``map_key`` (``(h, w)`` or ``(1, h, w)``, a tensor or
    a ``PixelData``) and the labels under ``label_key`` (mmseg's ``gt_sem_seg``). The model
    :class:`mmmamba.analysis.ActivationMapper` puts the maps there, so
    ``test_evaluator = dict(type='mmmamba.BinaryAUCMetric', ...)`` runs in a test loop on any
    mmseg dataset.

    Args:
        background_labels (Sequence[int]): Label values that are background. Defaults to (0, ).
            With mmseg's ``reduce_zero_label=True`` label 0 becomes 255: pass the reduced ids.
        ignore_index (int, optional): Label left out of the AUC. Defaults to 255.
        map_key (str): Data-sample key of the map. Defaults to ``'activation_map'``.
        label_key (str): Data-sample key of the labels. Defaults to ``'gt_sem_seg'``.
        collect_device (str): See ``BaseMetric``. Defaults to ``'cpu'``.
        prefix (str, optional): Metric-name prefix. Defaults to ``'binary_auc'``.

    Results: ``auc`` (mean over scored images), ``num_scored``, ``skipped`` (one-class
    images).
    """
    default_prefix = 'binary_auc'

    def __init__(self,
                 background_labels: Sequence[int] = (0, ),
                 ignore_index: Optional[int] = 255,
                 map_key: str = 'activation_map',
                 label_key: str = 'gt_sem_seg',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.background_labels = tuple(int(v) for v in background_labels)
        self.ignore_index = ignore_index
        self.map_key, self.label_key = map_key, label_key

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            get = sample.get if isinstance(sample, dict) else (
                lambda key, s=sample: getattr(s, key, None))
            for key in (self.map_key, self.label_key):
                if get(key) is None:
                    have = sorted(sample.keys())
                    raise KeyError(f'BinaryAUCMetric needs {key!r} in each data sample, found '
                                   f'{have}; the map comes from mmmamba.ActivationMapper (or '
                                   f'set map_key=), the labels from LoadAnnotations')
            activation = _tensor(get(self.map_key)).squeeze(0).cpu()
            labels = _tensor(get(self.label_key)).cpu()
            self.results.append(
                image_auc(activation, labels, self.background_labels, self.ignore_index))

    def compute_metrics(self, results: List[float]) -> Dict[str, float]:
        scored = [r for r in results if not np.isnan(r)]
        return dict(
            auc=float(np.mean(scored)) if scored else float('nan'),
            num_scored=len(scored),
            skipped=len(results) - len(scored))
