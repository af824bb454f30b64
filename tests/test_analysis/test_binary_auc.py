"""Binary-AUC on constructed cases of known AUC, against scikit-learn, and as a Metric."""
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from sklearn.metrics import roc_auc_score

from mmmamba.analysis import BinaryAUCMetric, binary_auc, image_auc, resize_map
from mmmamba.registry import METRICS


def test_known_aucs():
    labels = torch.tensor([0, 0, 1, 1, 0, 1], dtype=torch.bool)
    perfect = labels.double() + 0.1 * torch.arange(6)
    assert binary_auc(perfect, labels) == 1.0
    assert binary_auc(-perfect, labels) == 0.0
    # a constant map: every fg/bg pair is a tie, counted 1/2
    assert binary_auc(torch.ones(6), labels) == 0.5
    # 3 fg x 3 bg pairs; fg scores 1, 3, 5 and bg scores 2, 4, 6: fg wins (3>2, 5>2, 5>4)
    assert binary_auc(torch.tensor([1., 3., 5., 2., 4., 6.]),
                      torch.tensor([1, 1, 1, 0, 0, 0])) == pytest.approx(3 / 9)
    # one tie across classes (score 2): 1 win + ½ of the tie out of 1 x 2 pairs
    assert binary_auc(torch.tensor([2., 2., 1.]), torch.tensor([1, 0, 0])) == 0.75
    assert np.isnan(binary_auc(torch.rand(5), torch.ones(5)))


def test_random_map_is_near_half():
    g = torch.Generator().manual_seed(0)
    labels = torch.rand(200, 200, generator=g) < 0.3
    scores = torch.rand(200, 200, generator=g)
    assert abs(binary_auc(scores, labels) - 0.5) < 0.01


@pytest.mark.parametrize('seed', range(4))
def test_matches_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    labels = rng.random(500) < rng.uniform(0.1, 0.9)
    scores = rng.integers(0, 20, 500).astype(np.float64)  # many ties
    if seed % 2:
        scores = scores + rng.normal(0, 1, 500) * labels
    expected = roc_auc_score(labels, scores)
    assert binary_auc(torch.from_numpy(scores), torch.from_numpy(labels)) == pytest.approx(
        expected, abs=1e-12)


def test_resize_is_bilinear_without_corner_alignment():
    # a 1 x 2 map [0, 1] to 1 x 4: sample centres at 0.25, 0.75, 1.25, 1.75 input pixels -
    # 0.5 -> clamped -0.25, 0.25, 0.75, 1.25 -> 0, 0.25, 0.75, 1
    out = resize_map(torch.tensor([[0., 1.]]), (1, 4))
    assert out.tolist() == [[0., 0.25, 0.75, 1.]]
    with pytest.raises(ValueError, match=r'an activation map must be \(h, w\), got shape '
                       r'\(1, 1, 2\)'):
        resize_map(torch.zeros(1, 1, 2), (2, 2))


def test_image_auc_mask_rules():
    """Foreground is any label outside background_labels; ignore_index pixels are dropped."""
    labels = torch.tensor([[0, 0, 3, 3], [0, 255, 7, 7]])
    # the map, already at mask size, is high on the right half and at the ignored pixel
    activation = torch.tensor([[0., 0., 1., 1.], [0., 9., 1., 1.]])
    assert image_auc(activation, labels) == 1.0
    # counting 255 as a label: it is foreground with the highest score, still perfect
    assert image_auc(activation, labels, ignore_index=None) == 1.0
    # 3 as background too: fg = {7, 7}, bg = {0, 0, 0, 3, 3}: the 3s tie with the 7s
    # 10 fg/bg pairs: the 7s beat the three 0s (6 wins) and tie with the 3s (4 ties)
    assert image_auc(activation, labels, background_labels=(0, 3)) == pytest.approx(0.8)
    with pytest.raises(ValueError, match=r'a label map must be \(H, W\) or \(1, H, W\), got'):
        image_auc(activation, labels[None, None])


def test_metric_in_evaluator_form():
    metric = METRICS.build(dict(type='BinaryAUCMetric', background_labels=(0, ),
                                ignore_index=255))
    assert isinstance(metric, BinaryAUCMetric)
    g = torch.Generator().manual_seed(1)
    mask = torch.zeros(1, 8, 8, dtype=torch.long)
    mask[:, 2:6, 2:6] = 4
    small = torch.zeros(4, 4)
    small[1:3, 1:3] = 1.  # a 4 x 4 map of the same square
    samples = [
        dict(activation_map=dict(data=small[None]), gt_sem_seg=dict(data=mask)),  # dict form
        dict(activation_map=-small, gt_sem_seg=PixelData(data=mask)),
        dict(activation_map=torch.rand(2, 2, generator=g), gt_sem_seg=torch.zeros(1, 8, 8)),
        dict(activation_map=torch.rand(2, 2, generator=g),
             gt_sem_seg=torch.full((1, 8, 8), 255)),
    ]
    metric.process({}, samples)
    expected = [image_auc(small, mask[0]), image_auc(-small, mask[0])]
    assert expected[0] == 1.0 and expected[1] == 0.0
    assert metric.compute_metrics(metric.results) == dict(auc=0.5, num_scored=2, skipped=2)
    with pytest.raises(KeyError, match="needs 'activation_map' in each data sample, found "
                       r"\['gt_sem_seg'\]"):
        metric.process({}, [dict(gt_sem_seg=mask)])
