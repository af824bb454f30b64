"""Helpers shared by the config tests: loading (cached), building on CPU, tiny batches for each
task and the learning rate a config's optimizer and schedulers give at each iteration.

pytest runs with ``--import-mode=importlib``, so a test module loads this file by path:

    spec = importlib.util.spec_from_file_location('config_helpers', Path(__file__).parent /
                                                  'config_helpers.py')
"""
import copy
import functools
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, PARAM_SCHEDULERS, init_default_scope

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / 'configs'


def load_fresh(name: str) -> Config:
    """``configs/<name>.py`` parsed now, with the current environment variables."""
    return Config.fromfile(str(CONFIG_DIR / f'{name}.py'))


@functools.lru_cache(maxsize=None)
def _load_cached(name: str) -> Config:
    return load_fresh(name)


def load(name: str) -> Config:
    """The config with the environment of the session (parsed once: mmdet/mmseg bases are slow)."""
    return copy.deepcopy(_load_cached(name))


def build_model(cfg: Config) -> torch.nn.Module:
    init_default_scope(cfg.default_scope)
    return revert_sync_batchnorm(MODELS.build(cfg.model))


def cpu_optim_wrapper(model: torch.nn.Module, cfg: Config):
    """The config's optimizer, clipping and paramwise settings in an fp32 OptimWrapper (AMP
    needs CUDA)."""
    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    optim_cfg.type = 'OptimWrapper'
    optim_cfg.pop('loss_scale', None)
    return build_optim_wrapper(model, optim_cfg)


def lr_trace(cfg: Config, epoch_length: int, num_iters: Optional[int] = None) -> List[float]:
    """The learning rate of every training iteration under the config's optimizer and
    ``param_scheduler``, for an epoch of ``epoch_length`` iterations.

    The schedulers are built and stepped as mmengine's Runner and ParamSchedulerHook do: a
    missing ``end`` defaults to the train loop's length, ``epoch_length`` is passed for
    ``convert_to_iter_based``, iteration-based schedulers step after every iteration and
    epoch-based ones after every epoch. The lr does not depend on the model, so a one-layer
    model keeps the stepping cheap.
    """
    model = torch.nn.Linear(2, 2)
    optim_wrapper = cpu_optim_wrapper(model, cfg)
    by_epoch_loop = cfg.train_cfg.get('by_epoch', cfg.train_cfg.get('type') != 'IterBasedTrainLoop')
    if by_epoch_loop:
        max_epochs = cfg.train_cfg.max_epochs
        max_iters = max_epochs * epoch_length
    else:
        max_iters = cfg.train_cfg.max_iters
        max_epochs = None
    schedulers = []
    for scheduler_cfg in copy.deepcopy(cfg.param_scheduler):
        if by_epoch_loop:
            scheduler_cfg.setdefault(
                'end', max_epochs if scheduler_cfg.get('by_epoch', True) else max_iters)
        else:
            scheduler_cfg.setdefault('end', max_iters)
        schedulers.append(
            PARAM_SCHEDULERS.build(
                scheduler_cfg,
                default_args=dict(optimizer=optim_wrapper, epoch_length=epoch_length)))
    lrs = []
    for it in range(num_iters if num_iters is not None else max_iters):
        lrs.append(optim_wrapper.optimizer.param_groups[0]['lr'])
        for scheduler in schedulers:
            if not scheduler.by_epoch:
                scheduler.step()
        if by_epoch_loop and (it + 1) % epoch_length == 0:
            for scheduler in schedulers:
                if scheduler.by_epoch:
                    scheduler.step()
    return lrs


def det_batch(labels: Sequence[int], num_images: int = 2, height: int = 64,
              width: int = 96) -> dict:
    """uint8 images, as the data loader gives them, each with two boxes and their masks."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData

    generator = torch.Generator().manual_seed(0)
    boxes = torch.tensor([[8., 6., 50., 40.], [40., 20., 90., 60.]])
    masks = np.zeros((len(boxes), height, width), dtype=np.uint8)
    for k, (x1, y1, x2, y2) in enumerate(boxes.int().tolist()):
        masks[k, y1:y2, x1:x2] = 1
    inputs, samples = [], []
    for _ in range(num_images):
        inputs.append(
            torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=generator))
        sample = DetDataSample(metainfo=dict(
            img_shape=(height, width), ori_shape=(height, width), scale_factor=(1., 1.)))
        sample.gt_instances = InstanceData(
            bboxes=boxes.clone(),
            labels=torch.tensor(list(labels)),
            masks=BitmapMasks(masks.copy(), height, width))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def seg_batch(num_classes: int, num_images: int = 2, size: int = 64) -> dict:
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    generator = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(num_images):
        inputs.append(
            torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=generator))
        sample = SegDataSample(metainfo=dict(
            img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size)))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, num_classes, (1, size, size), generator=generator))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def cls_batch(num_classes: int, num_images: int = 2, size: int = 64) -> dict:
    from mmpretrain.structures import DataSample

    generator = torch.Generator().manual_seed(0)
    inputs = [
        torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=generator)
        for _ in range(num_images)
    ]
    labels = torch.randint(0, num_classes, (num_images, ), generator=generator).tolist()
    samples = [DataSample().set_gt_label(label) for label in labels]
    return dict(inputs=inputs, data_samples=samples)


def batch_for(cfg: Config) -> Dict:
    """A two-image batch for the config's task and class count."""
    model = cfg.model
    if cfg.default_scope == 'mmdet':
        num_classes = model.roi_head.bbox_head.num_classes
        return det_batch(labels=[3 % num_classes, 17 % num_classes])
    if cfg.default_scope == 'mmseg':
        return seg_batch(model.decode_head.num_classes)
    return cls_batch(model.head.num_classes)


def isotropic_tiny(cfg: Config, arch: str, channels: int, num_layers: int,
                   representation: int) -> Config:
    """A Vim/Mamba-Reg config's model with a test-only backbone size and no pretrained weights:
    ``channels`` wide with ``num_layers`` layers; ``representation`` is the width of the
    classifier's global representation."""
    cfg = copy.deepcopy(cfg)
    model = cfg.model
    model.backbone.arch = arch
    model.backbone.init_cfg = None
    if cfg.default_scope == 'mmdet':
        model.neck[0].in_channels = channels
        # fewer sampled RoIs: the mask head's convolutions on 4x128 positives take seconds
        model.train_cfg.rpn_proposal.max_per_img = 200
        model.train_cfg.rcnn.sampler.num = 64
    elif cfg.default_scope == 'mmseg':
        model.backbone.out_indices = tuple(range(num_layers))
        model.neck.in_channels = channels
        # the config pads every batch to the 512x512 crop; pad to the tiny input size instead
        model.data_preprocessor.size = (64, 64)
    else:
        model.head.in_channels = representation
    return cfg
