"""The main job's tools on tiny toy data: distributed train/test, the stock mmdet/mmseg scripts,
and resume — run as subprocesses exactly as a user types them."""
import importlib.util
import json
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mmmamba  # noqa: F401  (allow-lists what mmengine checkpoints hold, for torch.load)

REPO = Path(__file__).resolve().parents[2]
DET_CONFIG = 'configs/toy/mask_rcnn_mambaout_femto_toy.py'
SEG_CONFIG = 'configs/toy/upernet_mambaout_femto_toy.py'
SITE = Path(torch.__file__).resolve().parents[1]
# Tiny schedules: one short epoch / a few iterations, no dataloader workers.
DET_OPTS = [
    'train_cfg.max_epochs=1', 'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
    'val_dataloader.persistent_workers=False', 'test_dataloader.num_workers=0',
    'test_dataloader.persistent_workers=False'
]
SEG_OPTS = [
    'train_cfg.max_iters=4', 'train_cfg.val_interval=4', 'default_hooks.checkpoint.interval=2',
    'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
    'val_dataloader.persistent_workers=False', 'test_dataloader.num_workers=0',
    'test_dataloader.persistent_workers=False'
]


def _load_toy_data_module():
    path = REPO / 'tools' / 'dataset_converters' / 'make_toy_data.py'
    spec = importlib.util.spec_from_file_location('make_toy_data', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('toy')
    toy = _load_toy_data_module()
    toy.make_coco(str(root), num_train=4, num_val=2, image_size=96, seed=0)
    toy.make_ade(str(root), num_train=4, num_val=2, image_size=64, seed=0)
    return root


@pytest.fixture
def env(tool_env, toy_root):
    tool_env['TOY_COCO_ROOT'] = f'{toy_root}/coco/'
    tool_env['TOY_ADE_ROOT'] = f'{toy_root}/ade/'
    return tool_env


def _run(cmd, env, timeout=600):
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=timeout)
    out = proc.stdout + proc.stderr
    # both tails: the runner logs to stdout, torch and gloo write to stderr
    assert proc.returncode == 0, (f'{cmd} failed:\n--- stdout (tail) ---\n{proc.stdout[-3000:]}'
                                  f'\n--- stderr (tail) ---\n{proc.stderr[-3000:]}')
    return out


@pytest.mark.slow
def test_dist_train_and_dist_test_two_processes(tmp_path, env):
    env['PORT'] = '29531'
    opts = ['--cfg-options', *DET_OPTS]
    log = _run(['bash', 'tools/dist_train.sh', DET_CONFIG, 2, '--work-dir', tmp_path, *opts], env)
    assert 'gloo backend' in log
    ckpt = tmp_path / 'epoch_1.pth'
    # 4 images, 2 per process and batch, 2 processes: one iteration per epoch.
    assert torch.load(ckpt, map_location='cpu')['meta']['iter'] == 1
    log = _run(['bash', 'tools/dist_test.sh', DET_CONFIG, ckpt, 2, '--work-dir', tmp_path, *opts],
               env)
    metrics = json.loads((tmp_path / 'test_metrics.json').read_text())
    assert {'coco/bbox_mAP', 'coco/segm_mAP'} <= set(metrics)


@pytest.mark.slow
def test_stock_mmdet_train_resume_and_test(tmp_path, env):
    train = SITE / 'mmdet' / '.mim' / 'tools' / 'train.py'
    test = SITE / 'mmdet' / '.mim' / 'tools' / 'test.py'
    base = [sys.executable, train, DET_CONFIG, '--work-dir', tmp_path]
    _run(base + ['--cfg-options', *DET_OPTS], env)
    opts = [o for o in DET_OPTS if not o.startswith('train_cfg.max_epochs')]
    log = _run(base + ['--resume', '--cfg-options', 'train_cfg.max_epochs=2', *opts], env)
    assert 'resumed epoch: 1, iter: 2' in log
    ckpt = torch.load(tmp_path / 'epoch_2.pth', map_location='cpu')
    assert ckpt['meta']['iter'] == 4
    log = _run([sys.executable, test, DET_CONFIG, tmp_path / 'epoch_2.pth', '--work-dir',
                tmp_path, '--show-dir', 'vis', '--out', tmp_path / 'preds.pkl',
                '--cfg-options', *DET_OPTS], env)
    # the stock script evaluated our checkpoint on each of the 2 val images
    with open(tmp_path / 'preds.pkl', 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 2
    for pred in preds:
        labels = pred['pred_instances']['labels']
        assert len(pred['pred_instances']['bboxes']) == len(labels)
        assert all(0 <= int(label) < 3 for label in labels)
    bbox_map = float(re.findall(r'coco/bbox_mAP: (-?[0-9.]+)', log)[-1])
    assert 0 <= bbox_map <= 1
    assert list(tmp_path.glob('*/vis/*.jpg')) or list(tmp_path.glob('*/vis/*.png'))


@pytest.mark.slow
def test_stock_mmseg_test_evaluates_our_checkpoint(tmp_path, env):
    _run([sys.executable, 'tools/train.py', SEG_CONFIG, '--work-dir', tmp_path, '--cfg-options',
          *SEG_OPTS], env)
    stock_test = SITE / 'mmseg' / '.mim' / 'tools' / 'test.py'
    log = _run([sys.executable, stock_test, SEG_CONFIG, tmp_path / 'iter_4.pth', '--work-dir',
                tmp_path, '--out', tmp_path / 'preds', '--cfg-options', *SEG_OPTS], env)
    # the stock script wrote one label map per val image, in the files' own ids: ADE's 1..5 for
    # the toy set's 5 classes (reduce_zero_label maps them to 0..4 and the metric back)
    maps = sorted((tmp_path / 'preds').glob('*.png'))
    assert len(maps) == 2
    for path in maps:
        assert set(np.unique(np.asarray(Image.open(path)))) <= set(range(1, 6))
    miou = float(re.findall(r'mIoU: ([0-9.]+)', log)[-1])
    assert 0 <= miou <= 100
