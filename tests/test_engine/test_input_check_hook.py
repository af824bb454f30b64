"""InputCheckHook: bad data roots, missing images, class-count mismatches and wrong checkpoints
stop a run in ``before_run`` with one message naming the file or config key.

The runs use the real configs (``configs/{mask_rcnn,upernet,cls}_mambaout_t.py``) with the
test-only backbone size, narrow heads and the generated toy sets in ``tmp_path``; a failing run
never gets past ``before_run``, the passing one evaluates 2 tiny images.
"""
import copy
import functools
import importlib.util
import logging
import re
import shutil
from pathlib import Path
from typing import Callable, Optional

import mmengine
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DATASETS, MODELS, init_default_scope
from mmengine.runner import Runner

from mmmamba.engine import InputCheckHook
from mmmamba.engine.hooks import input_check_hook
from mmmamba.engine.hooks.input_check_hook import (check_checkpoint, check_dataset_files,
                                                   class_count_modules)
from mmmamba.registry import HOOKS

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / 'configs'
ATTO_DIMS = [8, 16, 32, 48]  # MambaOut's test-only size
WIDTH = 16  # neck and head channels


def _load_toy_module():
    spec = importlib.util.spec_from_file_location(
        'make_toy_data', REPO / 'tools' / 'dataset_converters' / 'make_toy_data.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOY = _load_toy_module()


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory) -> Path:
    """Pristine toy sets, shared; tests that damage a set copy it first (see ``damaged``)."""
    root = tmp_path_factory.mktemp('toy')
    TOY.make_coco(root, num_train=4, num_val=2, image_size=64, seed=0)
    TOY.make_ade(root, num_train=3, num_val=2, image_size=64, seed=0)
    TOY.make_imagenet(root, train_per_class=2, val_per_class=1, image_size=32, seed=0)
    return root


@pytest.fixture
def damaged(toy_root: Path, tmp_path: Path) -> Callable[[str], Path]:
    """``damaged('coco')`` returns a private copy of that toy set, free to break."""
    def copy_set(kind: str) -> Path:
        return Path(shutil.copytree(toy_root / kind, tmp_path / 'data' / kind))
    return copy_set


@pytest.fixture(autouse=True)
def quiet_runner(monkeypatch) -> None:
    """Skip the runner's environment report and config dump (yapf): logging only, ~3 s a run."""
    monkeypatch.setattr(Runner, '_log_env', lambda self, env_cfg: None)
    monkeypatch.setattr(Runner, 'dump_config', lambda self: None)


@functools.lru_cache(maxsize=None)
def _parsed(name: str) -> Config:
    return Config.fromfile(str(CONFIG_DIR / f'{name}.py'))


def _runtime(cfg: Config, work_dir: Path, hook: Optional[dict]) -> Config:
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = work_dir.name  # own logger and visualizer per test
    cfg.visualizer.pop('name', None)
    cfg.launcher = 'none'
    cfg.custom_hooks = [hook] if hook is not None else []
    cfg.optim_wrapper.type = 'OptimWrapper'  # AMP needs CUDA
    cfg.optim_wrapper.pop('loss_scale', None)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].update(batch_size=1, num_workers=0, persistent_workers=False)
    return cfg


def det_config(root: Path, work_dir: Path, hook: Optional[dict] = None,
               num_classes: int = 3) -> Config:
    """configs/mask_rcnn_mambaout_t.py, atto backbone, 16-channel heads, toy COCO at ``root``."""
    cfg = copy.deepcopy(_parsed('mask_rcnn_mambaout_t'))
    model = cfg.model
    model.backbone.update(arch='atto', drop_path_rate=0., init_cfg=None)
    model.neck.update(in_channels=ATTO_DIMS, out_channels=WIDTH)
    model.rpn_head.update(in_channels=WIDTH, feat_channels=WIDTH)
    model.roi_head.bbox_roi_extractor.out_channels = WIDTH
    model.roi_head.mask_roi_extractor.out_channels = WIDTH
    model.roi_head.bbox_head.update(in_channels=WIDTH, fc_out_channels=32,
                                    num_classes=num_classes)
    model.roi_head.mask_head.update(in_channels=WIDTH, conv_out_channels=WIDTH,
                                    num_classes=num_classes)
    for transform in cfg.train_pipeline + cfg.test_pipeline:
        if transform.type == 'Resize':
            transform.scale = (64, 64)  # not 1333x800
    metainfo = dict(classes=TOY.COCO_CLASSES)
    for split in ('train', 'val'):
        cfg[f'{split}_dataloader'].dataset.update(
            data_root=f'{root}/', metainfo=metainfo,
            ann_file=f'annotations/instances_{split}2017.json',
            data_prefix=dict(img=f'{split}2017/'),
            pipeline=cfg.train_pipeline if split == 'train' else cfg.test_pipeline)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.val_evaluator.ann_file = f'{root}/annotations/instances_val2017.json'
    cfg.test_evaluator = cfg.val_evaluator
    return _runtime(cfg, work_dir, hook)


def seg_config(root: Path, work_dir: Path, hook: Optional[dict] = None) -> Config:
    """configs/upernet_mambaout_t.py (150 classes), atto backbone, toy ADE (5 classes)."""
    cfg = copy.deepcopy(_parsed('upernet_mambaout_t'))
    model = cfg.model
    model.backbone.update(arch='atto', drop_path_rate=0., init_cfg=None)
    model.decode_head.update(in_channels=ATTO_DIMS, channels=WIDTH)
    model.auxiliary_head.update(in_channels=ATTO_DIMS[2], channels=WIDTH)
    metainfo = dict(classes=TOY.ADE_CLASSES, palette=TOY.ADE_PALETTE)
    for split, folder in (('train', 'training'), ('val', 'validation')):
        cfg[f'{split}_dataloader'].dataset.update(
            data_root=str(root), metainfo=metainfo,
            data_prefix=dict(img_path=f'images/{folder}', seg_map_path=f'annotations/{folder}'))
    cfg.test_dataloader = cfg.val_dataloader
    return _runtime(cfg, work_dir, hook)


def cls_config(root: Path, work_dir: Path, hook: Optional[dict] = None) -> Config:
    """configs/cls_mambaout_t.py (1000 classes), atto backbone, toy ImageNet (4 classes)."""
    cfg = copy.deepcopy(_parsed('cls_mambaout_t'))
    cfg.model.backbone.update(arch='atto', drop_path_rate=0.)
    cfg.model.head.in_channels = ATTO_DIMS[-1]
    for key in ('train_dataloader', 'val_dataloader'):
        cfg[key].dataset.update(data_root=str(root),
                                metainfo=dict(classes=TOY.IMAGENET_CLASSES))
    cfg.test_dataloader = cfg.val_dataloader
    return _runtime(cfg, work_dir, hook)


HOOK = dict(type='mmmamba.InputCheckHook')


def build_dataset(cfg: Config, key: str = 'train_dataloader'):
    init_default_scope(cfg.default_scope)
    return DATASETS.build(cfg[key].dataset)


def log_of(runner: Runner) -> str:
    """What this runner's logger wrote. Two runners built within one second share an MMLogger
    (named by timestamp), so read the file its handler writes rather than globbing log_dir."""
    log_file = next(h.baseFilename for h in runner.logger.handlers
                    if isinstance(h, logging.FileHandler))
    return Path(log_file).read_text()


def save_state_dict(model: torch.nn.Module, path: Path, prefix: str = '') -> Path:
    state_dict = {prefix + k: v for k, v in model.state_dict().items()}
    torch.save(dict(meta=dict(), state_dict=state_dict), path)
    return path


# --------------------------------------------------------------------------- registry
def test_registered_under_the_mmmamba_scope():
    init_default_scope('mmseg')
    assert isinstance(HOOKS.build(HOOK), InputCheckHook)
    assert HOOKS.build(dict(HOOK, allow_partial_load=True)).allow_partial_load


# --------------------------------------------------------------------------- 1. missing root
def test_missing_data_root_stops_naming_the_file(toy_root, tmp_path):
    runner = Runner.from_cfg(det_config(tmp_path / 'no_coco', tmp_path / 'work', HOOK))
    # CocoDataset reads its ann_file while the runner builds the loop, before any hook runs
    with pytest.raises(FileNotFoundError, match='no_coco/annotations/instances_train2017.json'):
        runner.train()


def test_missing_label_map_folder_is_named(damaged, tmp_path):
    root = damaged('ade')
    shutil.rmtree(root / 'annotations' / 'training')
    runner = Runner.from_cfg(seg_config(root, tmp_path / 'work', dict(HOOK, check_classes=False)))
    # ADE20KDataset lists the images only, so the run would otherwise fail in a loader worker
    with pytest.raises(FileNotFoundError, match=re.escape(
            f'{root}/annotations/training (3 seg_map_path files expected there)')) as error:
        runner.train()
    message = str(error.value)
    assert 'the train dataset (ADE20KDataset' in message


def test_missing_data_root_of_a_lazy_dataset_is_named(tmp_path):
    cfg = det_config(tmp_path / 'no_coco', tmp_path / 'work')
    cfg.train_dataloader.dataset.lazy_init = True
    dataset = build_dataset(cfg)
    with pytest.raises(FileNotFoundError, match=f'data_root {tmp_path}/no_coco/ of the train '
                                                'dataset'):
        check_dataset_files(dataset, 'train')


def test_missing_ann_file_is_named(damaged, tmp_path):
    root = damaged('imagenet')
    (root / 'meta' / 'val.txt').unlink()
    cfg = cls_config(root, tmp_path / 'work')
    cfg.val_dataloader.dataset.update(ann_file='meta/val.txt', lazy_init=True)
    with pytest.raises(FileNotFoundError, match=f'ann_file {root}/meta/val.txt of the val '):
        check_dataset_files(build_dataset(cfg, 'val_dataloader'), 'val')


# --------------------------------------------------------------------------- 2. missing image
def test_missing_coco_image_is_named_with_its_ann_file(damaged, tmp_path):
    root = damaged('coco')
    (root / 'train2017' / '000000000002.png').unlink()
    runner = Runner.from_cfg(det_config(root, tmp_path / 'work', HOOK))
    with pytest.raises(FileNotFoundError, match=re.escape(
            f'1 of 4 img_path files are missing: {root}/train2017/000000000002.png')) as error:
        runner.train()
    assert f'ann_file {root}/annotations/instances_train2017.json' in str(error.value)


def test_missing_image_folder_is_named_at_test_time(damaged, tmp_path):
    root = damaged('coco')
    shutil.rmtree(root / 'val2017')
    runner = Runner.from_cfg(det_config(root, tmp_path / 'work', HOOK))
    with pytest.raises(FileNotFoundError, match=f'{root}/val2017 \\(2 img_path files expected'):
        runner.test()


def test_missing_label_map_is_named(damaged, tmp_path):
    root = damaged('ade')
    (root / 'annotations' / 'validation' / 'ADE_val_00000002.png').unlink()
    dataset = build_dataset(seg_config(root, tmp_path / 'work'), 'val_dataloader')
    with pytest.raises(FileNotFoundError, match=re.escape(
            f'1 of 2 seg_map_path files are missing: {root}/annotations/validation/'
            'ADE_val_00000002.png')):
        check_dataset_files(dataset, 'val')


def test_missing_imagenet_image_is_named(damaged, tmp_path):
    root = damaged('imagenet')
    (root / 'train' / 'star' / 'star_00001.jpg').unlink()
    dataset = build_dataset(cls_config(root, tmp_path / 'work'))
    with pytest.raises(FileNotFoundError,
                       match=re.escape(f'missing: {root}/train/star/star_00001.jpg')) as error:
        check_dataset_files(dataset, 'train')
    assert f'ann_file {root}/meta/train.txt' in str(error.value)


# --------------------------------------------------------------------------- 3. class count
def test_detector_class_count_mismatch_names_the_keys(toy_root, tmp_path):
    cfg = det_config(toy_root / 'coco', tmp_path / 'work', HOOK, num_classes=80)
    with pytest.raises(ValueError, match='^' + re.escape(
            'model.roi_head.bbox_head.num_classes = 80 and '
            'model.roi_head.mask_head.num_classes = 80 in the config')) as error:
        Runner.from_cfg(cfg).test()
    message = str(error.value)
    assert "has 3 classes: 'circle', 'square', 'triangle'" in message
    assert 'instances_val2017.json' in message


def test_segmentor_class_count_mismatch_names_the_keys(toy_root, tmp_path):
    runner = Runner.from_cfg(seg_config(toy_root / 'ade', tmp_path / 'work', HOOK))
    with pytest.raises(ValueError, match=re.escape(
            'model.decode_head.num_classes = 150 and model.auxiliary_head.num_classes = 150')
                       ) as error:
        runner.train()
    message = str(error.value)
    assert "the train dataset (ADE20KDataset" in message
    assert "has 5 classes: 'wall', 'building', 'sky', 'floor', 'tree'" in message


def test_classifier_class_count_mismatch_names_the_keys(toy_root, tmp_path):
    runner = Runner.from_cfg(cls_config(toy_root / 'imagenet', tmp_path / 'work', HOOK))
    with pytest.raises(ValueError, match=re.escape(
            "has 4 classes: 'circle', 'square', 'star', 'triangle'")) as error:
        runner.train()
    message = str(error.value)
    assert 'model.data_preprocessor.num_classes = 1000' in message
    assert 'model.head.num_classes = 1000' in message
    assert "has 4 classes: 'circle', 'square', 'star', 'triangle'" in message


def test_class_count_modules_skip_rpn_and_index_lists():
    class Head(torch.nn.Module):
        def __init__(self, num_classes: int) -> None:
            super().__init__()
            self.num_classes = num_classes

    model = torch.nn.Module()
    model.rpn_head = Head(1)
    model.roi_head = torch.nn.Module()
    model.roi_head.bbox_head = torch.nn.ModuleList([Head(3), Head(4)])
    assert class_count_modules(model) == [('model.roi_head.bbox_head[0].num_classes', 3),
                                          ('model.roi_head.bbox_head[1].num_classes', 4)]


# --------------------------------------------------------------------------- 4. checkpoint
@pytest.fixture
def detector_runner(toy_root, tmp_path) -> Callable[..., Runner]:
    """A runner on the intact toy COCO set with ``load_from`` and the given hook options."""
    def make(load_from: Path, **hook_options) -> Runner:
        cfg = det_config(toy_root / 'coco', tmp_path / 'work', dict(HOOK, **hook_options))
        cfg.load_from = str(load_from)
        return Runner.from_cfg(cfg)
    return make


def test_checkpoint_of_another_model_names_file_and_keys(detector_runner, tmp_path):
    cfg = cls_config(tmp_path, tmp_path / 'cls')
    init_default_scope('mmpretrain')
    classifier = save_state_dict(MODELS.build(cfg.model), tmp_path / 'classifier.pth')
    runner = detector_runner(classifier)
    with pytest.raises(RuntimeError, match='^' + re.escape(
            f'checkpoint {classifier} (load_from) does not match the model MaskRCNN')) as error:
        runner.test()  # what tools/test.py CONFIG CHECKPOINT does
    message = str(error.value)
    assert "keys are missing from it: backbone.norm0.weight" in message
    assert 'keys are not in the model: head.fc1.weight' in message


def test_checkpoint_with_other_shapes_names_key_and_shapes(detector_runner, tmp_path):
    cfg = det_config(tmp_path, tmp_path / 'other', num_classes=4)
    init_default_scope('mmdet')
    four_classes = save_state_dict(MODELS.build(cfg.model), tmp_path / 'four_classes.pth')
    with pytest.raises(RuntimeError, match=re.escape(
            'roi_head.bbox_head.fc_cls.weight: checkpoint (5, 32) vs model (4, 32)')) as error:
        detector_runner(four_classes).test()
    message = str(error.value)
    assert 'allow_partial_load=True' in message
    assert 'missing' not in message

    # fine-tuning to other classes: a warning, the fitting tensors load
    runner = detector_runner(four_classes, allow_partial_load=True)
    runner.call_hook('before_run')
    runner.load_or_resume()
    expected = torch.load(four_classes)['state_dict']['backbone.stem.conv1.weight']
    assert torch.equal(runner.model.state_dict()['backbone.stem.conv1.weight'], expected)


def test_partial_load_still_needs_one_fitting_tensor(tmp_path):
    model = torch.nn.Linear(2, 3)
    path = tmp_path / 'unrelated.pth'
    torch.save({'state_dict': {'encoder.weight': torch.zeros(3, 2)}}, path)
    with pytest.raises(RuntimeError, match=f'checkpoint {path} .*Not one tensor of it fits'):
        check_checkpoint(model, str(path), allow_partial_load=True)
    save_state_dict(model, path, prefix='module.')  # a DataParallel checkpoint
    assert check_checkpoint(model, str(path)) == 2


def test_missing_checkpoint_file_is_named(detector_runner, tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        detector_runner(tmp_path / 'nowhere.pth').test()


# --------------------------------------------------------------------------- all good
def test_correct_inputs_and_matching_checkpoint_pass(detector_runner, tmp_path):
    checkpoint = tmp_path / 'same_model.pth'
    runner = detector_runner(checkpoint)
    save_state_dict(runner.model, checkpoint)  # read by the hook in before_run
    expected = {k: v.clone() for k, v in runner.model.state_dict().items()}
    torch.nn.init.zeros_(runner.model.roi_head.bbox_head.fc_cls.weight)
    metrics = runner.test()
    assert 'coco/bbox_mAP' in metrics
    loaded = runner.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in expected.items())
    log = log_of(runner)
    assert (f'InputCheckHook: inputs found and consistent (test: 2 samples, 2 files; '
            f'{checkpoint}: {len(expected)} tensors fit)') in log
    assert 'WARNING' not in log


def test_intact_seg_and_cls_sets_pass(toy_root, tmp_path):
    seg = build_dataset(seg_config(toy_root / 'ade', tmp_path / 'seg'), 'val_dataloader')
    assert check_dataset_files(seg, 'val') == 4  # 2 images and their label maps
    cls = build_dataset(cls_config(toy_root / 'imagenet', tmp_path / 'cls'))
    assert check_dataset_files(cls, 'train') == 8


# --------------------------------------------------------------------------- mmengine internals
def test_renamed_runner_internal_skips_the_data_checks_and_the_run_goes_on(
        detector_runner, tmp_path, monkeypatch):
    """As if an mmengine release renamed ``Runner._test_loop``: the data and class checks are
    skipped with a warning naming the attribute, the checkpoint check (which reads the public
    ``runner.cfg``) still runs, and so does the evaluation."""
    monkeypatch.setattr(input_check_hook, 'RUNNER_LOOP_ATTRIBUTE', '_{split}_loop_renamed')
    checkpoint = tmp_path / 'same_model.pth'
    runner = detector_runner(checkpoint)
    save_state_dict(runner.model, checkpoint)
    metrics = runner.test()
    assert 0 <= metrics['coco/bbox_mAP'] <= 1
    log = log_of(runner)
    for split in ('train', 'val', 'test'):
        assert (f'WARNING - InputCheckHook: the data and class checks of the {split} loop '
                f"skipped: Runner has no attribute '_{split}_loop_renamed' in this mmengine "
                f'({mmengine.__version__}).') in log
    num_tensors = len(runner.model.state_dict())
    assert (f'InputCheckHook: inputs found and consistent ({checkpoint}: {num_tensors} tensors '
            'fit)') in log


def test_renamed_dataset_internal_skips_the_file_listing_with_a_warning(
        damaged, tmp_path, monkeypatch):
    """As if an mmengine release renamed ``BaseDataset._fully_initialized``: the image listing is
    skipped with a warning; the data root and annotation file checks need no internals."""
    monkeypatch.setattr(input_check_hook, 'DATASET_INITIALISED_ATTRIBUTE', '_renamed')
    logged = []
    monkeypatch.setattr(input_check_hook, 'print_log',
                        lambda message, **kwargs: logged.append((message, kwargs['level'])))
    root = damaged('imagenet')
    (root / 'train' / 'star' / 'star_00001.jpg').unlink()
    dataset = build_dataset(cls_config(root, tmp_path / 'work'))
    assert check_dataset_files(dataset, 'train') == 0  # nothing listed, nothing raised
    assert len(logged) == 1
    message, level = logged[0]
    assert level == logging.WARNING
    assert message.startswith('InputCheckHook: the image and label-map check of the train '
                              f'dataset ({type(dataset).__name__}, ann_file {root}/meta/train.txt)'
                              ' skipped: ')
    assert message.endswith(f"{type(dataset).__name__} has no attribute '_renamed' in this "
                            f'mmengine ({mmengine.__version__}).')
    (root / 'meta' / 'train.txt').unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(f'ann_file {root}/meta/train.txt of')):
        check_dataset_files(dataset, 'train')
