import pytest
import torch
from mmengine.registry import DefaultScope

from mmmamba.models.heads import MambaOutHead


def test_forward_and_pre_logits_shapes():
    head = MambaOutHead(num_classes=7, in_channels=16, mlp_ratio=2.).eval()
    feats = (torch.randn(3, 8), torch.randn(3, 16))  # the last entry is used
    assert head.pre_logits(feats).shape == (3, 32)
    assert head(feats).shape == (3, 7)
    torch.testing.assert_close(head(feats), head.fc2(head.pre_logits(feats)))


def test_layout_matches_timm_mlp_head():
    timm_mambaout = pytest.importorskip('timm.models.mambaout')
    head = MambaOutHead(num_classes=10, in_channels=48).eval()
    timm_head = timm_mambaout.MlpHead(48, num_classes=10).eval()
    state = {
        'fc1.weight': timm_head.pre_logits.fc.weight,
        'fc1.bias': timm_head.pre_logits.fc.bias,
        'norm.weight': timm_head.pre_logits.norm.weight + 0.5,
        'norm.bias': timm_head.pre_logits.norm.bias + 0.1,
        'fc2.weight': timm_head.fc.weight,
        'fc2.bias': timm_head.fc.bias,
    }
    head.load_state_dict(state, strict=True)
    with torch.no_grad():
        timm_head.pre_logits.norm.weight.add_(0.5)
        timm_head.pre_logits.norm.bias.add_(0.1)
        pooled = torch.randn(2, 48)
        # timm's head normalises the pooled features itself; ours receives them normalised.
        expected = timm_head.fc(timm_head.pre_logits(timm_head.norm(pooled)))
        torch.testing.assert_close(head((timm_head.norm(pooled), )), expected)


def test_rejects_spatial_features():
    head = MambaOutHead(num_classes=3, in_channels=8)
    with pytest.raises(ValueError, match='gap_before_final_norm'):
        head((torch.randn(1, 8, 2, 2), ))
    with pytest.raises(ValueError, match='num_classes'):
        MambaOutHead(num_classes=0, in_channels=8)


def test_init_weights_changes_weights():
    head = MambaOutHead(num_classes=3, in_channels=8)
    torch.nn.init.zeros_(head.fc1.weight)
    torch.nn.init.constant_(head.fc2.bias, 1.)
    head.init_weights()
    assert 0.015 < head.fc1.weight.std().item() < 0.025  # truncated normal, std .02
    assert torch.all(head.fc2.bias == 0)


def test_classifier_train_step_computes_loss_and_gradients():
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample
    cfg = dict(
        type='ImageClassifier',
        backbone=dict(
            type='mmmamba.MambaOut', arch='atto', out_indices=(3, ), gap_before_final_norm=True,
            drop_path_rate=0.1),
        head=dict(
            type='mmmamba.MambaOutHead', num_classes=5, in_channels=48, dropout_rate=0.1,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg)
    model.init_weights()
    model.train()
    inputs = torch.randn(2, 3, 32, 32)
    samples = [DataSample().set_gt_label(label) for label in (1, 4)]
    losses = model(inputs, samples, mode='loss')
    assert set(losses) == {'loss'} and torch.isfinite(losses['loss'])
    losses['loss'].backward()
    assert model.backbone.stem.conv1.weight.grad.abs().sum() > 0
    assert model.head.fc1.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        predictions = model(inputs, samples, mode='predict')
    assert predictions[0].pred_score.shape == (5, )
