"""Activation maps against the backbones' own outputs, the ActivationMapper + metric pair, and
the two analysis tools run end to end on tiny inputs."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmseg.structures import SegDataSample
from mmengine.structures import PixelData
from PIL import Image

from mmmamba.analysis import (ActivationMapper, BinaryAUCMetric, activation_maps,
                              capture_mixer_inputs, find_mixers, image_auc,
                              mixer_hidden_attention)
from mmmamba.models.backbones.mambaout import MambaOut
from mmmamba.models.backbones.vim import Vim
from mmmamba.models.backbones.vmamba import VMamba

REPO = Path(__file__).resolve().parents[2]


def test_vim_feature_norm_is_the_featmap_norm():
    torch.manual_seed(0)
    model = Vim(arch='atto', patch_size=8, img_size=32, final_norm=False,
                out_indices=(1, 3)).eval()
    x = torch.randn(2, 3, 32, 32)
    maps = activation_maps(model, x, 'feature_norm')
    assert list(maps) == [f'layers.{i}' for i in range(4)]
    with torch.no_grad():
        outs = model(x)  # (B, C, 4, 4) feature maps of layers 1 and 3
    torch.testing.assert_close(maps['layers.1'], outs[0].norm(dim=1))
    torch.testing.assert_close(maps['layers.3'], outs[1].norm(dim=1))
    assert tuple(model.out_indices) == (1, 3)  # restored


def test_vim_token_attention_is_the_class_row():
    torch.manual_seed(0)
    model = Vim(arch='atto', patch_size=8, img_size=24).eval()  # 9 patches, class token at 4
    x = torch.randn(1, 3, 24, 24)
    maps = activation_maps(model, x, 'token_attention', layers=['layers.2'])
    mixer = find_mixers(model)['layers.2.mixer']
    with capture_mixer_inputs({'m': mixer}) as records, torch.no_grad():
        model(x)
    M = mixer_hidden_attention(mixer, records['m'].scan_input).matrix[0].mean(0)  # (10, 10)
    patches = [0, 1, 2, 3, 5, 6, 7, 8, 9]
    torch.testing.assert_close(maps['layers.2'][0].flatten(), M[4, patches])


@pytest.mark.parametrize('family', ['vmamba', 'mambaout'])
def test_hierarchical_feature_norm(family):
    torch.manual_seed(0)
    model = (VMamba(arch='atto', out_indices=(0, 3)) if family == 'vmamba' else
             MambaOut(arch='femto', out_indices=(0, ))).eval()
    x = torch.randn(1, 3, 64, 64)
    maps = activation_maps(model, x)
    assert maps['stages.0.blocks.0'].shape == (1, 16, 16)
    with pytest.raises(ValueError, match="needs a class token or registers"):
        activation_maps(model, x, 'token_attention')
    with pytest.raises(KeyError, match=r"no layer\(s\) \['layers.0'\]"):
        activation_maps(model, x, layers=['layers.0'])


def test_activation_mapper_feeds_the_metric():
    torch.manual_seed(0)
    mapper = ActivationMapper(
        backbone=dict(type='mmmamba.Vim', arch='atto', patch_size=8, img_size=32),
        layer='layers.3').eval()
    samples = []
    for i in range(2):
        sample = SegDataSample()
        labels = torch.zeros(1, 40, 40, dtype=torch.long)
        labels[:, 8:30, 10:20] = i + 1
        sample.gt_sem_seg = PixelData(data=labels)
        samples.append(sample)
    with torch.no_grad():
        out = mapper(torch.randn(2, 3, 32, 32), samples, mode='predict')
    metric = BinaryAUCMetric()
    metric.process({}, [s.to_dict() for s in out])
    expected = [image_auc(s.activation_map.data[0], s.gt_sem_seg.data[0]) for s in out]
    assert out[0].activation_map.data.shape == (1, 4, 4)
    assert metric.compute_metrics(metric.results) == dict(
        auc=pytest.approx(np.mean(expected)), num_scored=2, skipped=0)
    with pytest.raises(ValueError, match="only predicts maps"):
        mapper(torch.randn(1, 3, 32, 32), samples, mode='loss')


def _tiny_ade(root: Path) -> None:
    rng = np.random.default_rng(0)
    for split in ('validation', ):
        (root / 'images' / split).mkdir(parents=True)
        (root / 'annotations' / split).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(
                root / 'images' / split / f'ADE_val_{i:08d}.jpg')
            labels = np.full((48, 48), 3, np.uint8)
            labels[10:30, 5:25] = 2 if i < 2 else 3  # the third image: background only
            Image.fromarray(labels).save(root / 'annotations' / split / f'ADE_val_{i:08d}.png')


@pytest.mark.slow
def test_binary_auc_tool(tmp_path, tool_env):
    _tiny_ade(tmp_path / 'ade')
    out = tmp_path / 'out'
    result = subprocess.run(
        [sys.executable, str(REPO / 'tools/analysis_tools/binary_auc.py'), '--family', 'Vim',
         '--arch', 'atto', '--img-size', '32', '--data-root', str(tmp_path / 'ade'),
         '--background-labels', '3', '--source', 'token_attention', '--overlays', '1',
         '--out', str(out)], capture_output=True, text=True, env=tool_env, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith('layers.')]
    assert len(lines) == 4
    assert all(line.split()[2:] == ['2', '1'] for line in lines)  # scored, skipped
    assert (out / 'overlay_token_attention_ADE_val_00000000.png').stat().st_size > 0
    rows = (out / 'auc_token_attention.csv').read_text().splitlines()
    assert rows[0] == 'layer,auc,num_scored,skipped' and len(rows) == 5


@pytest.mark.slow
def test_attention_rank_tool(tmp_path, tool_env):
    result = subprocess.run(
        [sys.executable, str(REPO / 'tools/analysis_tools/attention_rank.py'), '--family',
         'Vim', '--arch', 'atto', '--img-size', '64', '--chunk', '4', '--out', str(tmp_path)],
        capture_output=True, text=True, env=tool_env, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    table = {line[:44].strip(): line[44:].split() for line in result.stdout.splitlines()
             if line.startswith(('Mamba', 'linear', 'softmax'))}
    assert len(table) == 4
    # a 32-wide comparator has one head of 32 channels: linear attention rank <= 32
    assert float(table['linear attention (elu+1), per head (1)'][0]) <= 32
    # forward-direction blocks below the diagonal: rank <= d_state (16) per channel
    assert float(table['Mamba M, per channel (64 of 64)'][3]) <= 16
    assert (tmp_path / 'rank_layers_2_mixer.png').stat().st_size > 0


def test_metric_in_an_mmseg_test_loop(tmp_path):
    """Runner.test with mmseg's ADE20KDataset, ActivationMapper and BinaryAUCMetric, checked
    against the maps computed by hand on the same resized, normalised images."""
    import mmcv
    from mmengine.config import Config
    from mmengine.runner import Runner
    _tiny_ade(tmp_path / 'ade')
    mean, std = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
    backbone = dict(type='mmmamba.Vim', arch='atto', patch_size=8, img_size=32)
    cfg = Config(dict(
        default_scope='mmseg',
        work_dir=str(tmp_path / 'work'),
        model=dict(type='mmmamba.ActivationMapper', backbone=backbone, layer='layers.3',
                   data_preprocessor=dict(type='SegDataPreProcessor', mean=mean, std=std,
                                          bgr_to_rgb=True)),
        test_dataloader=dict(
            batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(
                type='ADE20KDataset', data_root=str(tmp_path / 'ade'), reduce_zero_label=False,
                data_prefix=dict(img_path='images/validation',
                                 seg_map_path='annotations/validation'),
                pipeline=[dict(type='LoadImageFromFile'),
                          dict(type='Resize', scale=(32, 32), keep_ratio=False),
                          dict(type='LoadAnnotations', reduce_zero_label=False),
                          dict(type='PackSegInputs')])),
        test_evaluator=dict(type='mmmamba.BinaryAUCMetric', background_labels=(3, )),
        test_cfg=dict(type='TestLoop'),
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        log_level='WARNING'))
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    model = runner.model.eval()
    aucs = []
    for i in range(3):
        stem = tmp_path / 'ade' / 'images' / 'validation' / f'ADE_val_{i:08d}'
        rgb = mmcv.imresize(mmcv.imread(str(stem) + '.jpg', channel_order='rgb'), (32, 32))
        x = (torch.from_numpy(rgb).float().permute(2, 0, 1)[None] -
             torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
        labels = torch.from_numpy(np.array(Image.open(
            str(stem).replace('images', 'annotations') + '.png')).astype(np.int64))
        value = activation_maps(model.backbone, x, layers=['layers.3'])['layers.3'][0]
        aucs.append(image_auc(value, labels, background_labels=(3, )))
    assert np.isnan(aucs[2])  # background only
    assert metrics['binary_auc/num_scored'] == 2 and metrics['binary_auc/skipped'] == 1
    assert metrics['binary_auc/auc'] == pytest.approx(np.mean(aucs[:2]), abs=1e-6)
