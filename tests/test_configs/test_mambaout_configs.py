"""The MambaOut configs: they load, say what the paper's recipes say, build, train one step on a
tiny CPU input (with the test-only backbone size), carry classifier weights into the dense
models, and the full-size models have the paper's parameter counts."""
import copy
import functools
import importlib.util
import math
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import ParamSchedulerHook
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import save_checkpoint

from mmmamba.models.backbones.mambaout import MambaOut

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / 'configs'

SIZE_ARCH = {'femto': 'femto', 'kobe': 'kobe', 't': 'tiny', 's': 'small', 'b': 'base'}
DET_CONFIGS = [f'mask_rcnn_mambaout_{s}' for s in ('t', 's', 'b')]
SEG_CONFIGS = [f'upernet_mambaout_{s}' for s in ('t', 's', 'b')]
CLS_CONFIGS = [f'cls_mambaout_{s}' for s in ('femto', 'kobe', 't', 's', 'b')]
ALL_CONFIGS = DET_CONFIGS + SEG_CONFIGS + CLS_CONFIGS
# drop path: paper (det/seg) and the official training scripts (cls)
DROP_PATH = dict(femto=0.025, kobe=0.025, t=0.2, s=0.4, b=0.6)
DENSE_DROP_PATH = dict(t=0.3, s=0.4, b=0.6)
TINY_ARCH = 'atto'  # the backbone's test-only size


def _load_get_flops():
    spec = importlib.util.spec_from_file_location(
        'get_flops', REPO / 'tools' / 'analysis_tools' / 'get_flops.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GET_FLOPS = _load_get_flops()
PAPER_COMPLEXITY = GET_FLOPS.PAPER_COMPLEXITY


def load_fresh(name: str) -> Config:
    return Config.fromfile(str(CONFIG_DIR / f'{name}.py'))


@functools.lru_cache(maxsize=None)
def _load_cached(name: str) -> Config:
    return load_fresh(name)


def load(name: str) -> Config:
    """The config with the environment of the session (parsed once: mmdet/mmseg bases are slow)."""
    return copy.deepcopy(_load_cached(name))


def size_of(name: str) -> str:
    return name.rsplit('_', 1)[1]


def tiny(cfg: Config) -> Config:
    """The config's model with the test-only backbone size and no pretrained weights."""
    cfg = copy.deepcopy(cfg)
    model = cfg.model
    dims = list(MambaOut.arch_settings[TINY_ARCH]['dims'])
    model.backbone.arch = TINY_ARCH
    model.backbone.init_cfg = None
    if cfg.default_scope == 'mmdet':
        model.neck.in_channels = dims
        # fewer sampled RoIs: the mask head's convolutions on 4x128 positives take seconds
        model.train_cfg.rpn_proposal.max_per_img = 200
        model.train_cfg.rcnn.sampler.num = 64
    elif cfg.default_scope == 'mmseg':
        model.decode_head.in_channels = dims
        model.auxiliary_head.in_channels = dims[model.auxiliary_head.in_index]
        # the config pads every batch to the 512x512 crop; pad to the tiny input size instead
        model.data_preprocessor.size = (64, 64)
    else:
        model.head.in_channels = dims[-1]
    return cfg


def build_model(cfg: Config) -> torch.nn.Module:
    init_default_scope(cfg.default_scope)
    return revert_sync_batchnorm(MODELS.build(cfg.model))


def cpu_optim_wrapper(model: torch.nn.Module, cfg: Config):
    """The config's optimizer and paramwise settings in an fp32 OptimWrapper (AMP needs CUDA)."""
    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    optim_cfg.type = 'OptimWrapper'
    optim_cfg.pop('loss_scale', None)
    return build_optim_wrapper(model, optim_cfg)


def det_batch(num_images: int = 2, height: int = 64, width: int = 96) -> dict:
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
            labels=torch.tensor([3, 17]),
            masks=BitmapMasks(masks.copy(), height, width))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def seg_batch(num_images: int = 2, size: int = 64) -> dict:
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
            data=torch.randint(0, 150, (1, size, size), generator=generator))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def cls_batch(num_images: int = 2, size: int = 64) -> dict:
    from mmpretrain.structures import DataSample

    generator = torch.Generator().manual_seed(0)
    inputs = [
        torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=generator)
        for _ in range(num_images)
    ]
    samples = [DataSample().set_gt_label(label) for label in (5, 998, 421, 0)[:num_images]]
    return dict(inputs=inputs, data_samples=samples)


BATCHES = {'mmdet': det_batch, 'mmseg': seg_batch, 'mmpretrain': cls_batch}


# ---------------------------------------------------------------------------------------------
# Loading and settings
# ---------------------------------------------------------------------------------------------
def test_the_config_list_is_complete():
    # the task configs (pre-training and probing configs have their own tests)
    found = {p.stem for pattern in ('cls_', 'mask_rcnn_', 'upernet_')
             for p in CONFIG_DIR.glob(f'{pattern}mambaout*.py')}
    assert found == set(ALL_CONFIGS)
    assert {k for k in PAPER_COMPLEXITY if 'mambaout' in k} == set(ALL_CONFIGS)


@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_config_loads_with_custom_imports(name):
    cfg = load(name)
    assert cfg.custom_imports == dict(imports=['mmmamba'], allow_failed_imports=False)
    assert cfg.model.backbone.type == 'mmmamba.MambaOut'
    assert 'data_preprocessor' in cfg.model
    assert cfg.default_scope in ('mmdet', 'mmseg', 'mmpretrain')


@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_widths_and_drop_path_follow_the_arch(name):
    cfg = load(name)
    size = size_of(name)
    backbone = cfg.model.backbone
    assert backbone.arch == SIZE_ARCH[size]
    dims = list(MambaOut.arch_settings[backbone.arch]['dims'])
    if cfg.default_scope == 'mmdet':
        assert list(cfg.model.neck.in_channels) == dims
        assert tuple(backbone.out_indices) == (0, 1, 2, 3)
        assert backbone.drop_path_rate == DENSE_DROP_PATH[size]
    elif cfg.default_scope == 'mmseg':
        assert list(cfg.model.decode_head.in_channels) == dims
        assert cfg.model.auxiliary_head.in_index == 2
        assert cfg.model.auxiliary_head.in_channels == dims[2]
        assert cfg.model.decode_head.num_classes == cfg.model.auxiliary_head.num_classes == 150
        assert backbone.drop_path_rate == DENSE_DROP_PATH[size]
    else:
        assert tuple(backbone.out_indices) == (3, )
        assert backbone.gap_before_final_norm is True
        assert cfg.model.head.type == 'mmmamba.MambaOutHead'
        assert cfg.model.head.in_channels == dims[-1]
        assert backbone.drop_path_rate == DROP_PATH[size]


@pytest.mark.parametrize('name', DET_CONFIGS + SEG_CONFIGS)
def test_dense_configs_load_imagenet_weights_into_the_backbone(name):
    init_cfg = load(name).model.backbone.init_cfg
    assert init_cfg.type == 'Pretrained'
    assert init_cfg.prefix == 'backbone.'
    arch = SIZE_ARCH[size_of(name)]
    assert init_cfg.checkpoint.endswith(f'mambaout_{arch}.pth')


# ---------------------------------------------------------------------------------------------
# Recipes: what the built optimizer and schedulers do, against the papers' rules
# ---------------------------------------------------------------------------------------------
def recipe_runner(cfg: Config, epoch_length: int, work_dir: Path,
                  auto_scale_lr: bool = False) -> Runner:
    """A Runner with the config's train loop, optimizer, lr scaling and schedulers, built as
    ``Runner.train()`` builds them, on a 2x2 linear model and ``epoch_length`` iterations per
    epoch (one process)."""
    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    optim_cfg.type = 'OptimWrapper'  # AMP needs CUDA; the lr is the same
    optim_cfg.pop('loss_scale', None)
    scale_cfg = dict(cfg.get('auto_scale_lr', {}), enable=auto_scale_lr)
    batch_size = cfg.train_dataloader.batch_size
    runner = Runner(
        model=torch.nn.Linear(2, 2),
        work_dir=str(work_dir),
        experiment_name=work_dir.name,
        # the config's per-process batch: Runner.scale_lr reads it off the data loader
        train_dataloader=torch.utils.data.DataLoader(
            list(range(epoch_length * batch_size)), batch_size=batch_size),
        train_cfg=copy.deepcopy(cfg.train_cfg),
        optim_wrapper=optim_cfg,
        param_scheduler=copy.deepcopy(cfg.get('param_scheduler')),
        auto_scale_lr=scale_cfg,
        default_scope=cfg.default_scope)
    runner.train_loop  # noqa: B018  (builds the loop, as train() does first)
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.scale_lr(runner.optim_wrapper, runner.auto_scale_lr)
    return runner


_LR_RUNS: dict = {}


def lr_at(cfg: Config, epoch_length: int, iterations: list, work_dir: Path) -> dict:
    """``{iteration: lr}`` of a training run under the config's schedulers, stepped by mmengine's
    ParamSchedulerHook after each iteration and each epoch, as in ``Runner.train()``. Configs
    whose optimizer, schedulers and train loop are the same share one run."""
    key = (repr((cfg.optim_wrapper, cfg.get('param_scheduler'), cfg.train_cfg,
                 cfg.train_dataloader.batch_size, cfg.get('auto_scale_lr'))),
           epoch_length, tuple(iterations))
    if key not in _LR_RUNS:
        _LR_RUNS[key] = _run_schedule(cfg, epoch_length, iterations, work_dir)
    return _LR_RUNS[key]


def _run_schedule(cfg: Config, epoch_length: int, iterations: list, work_dir: Path) -> dict:
    runner = recipe_runner(cfg, epoch_length, work_dir)
    runner.param_schedulers = runner.build_param_scheduler(runner.param_schedulers)
    hook = ParamSchedulerHook()
    wanted, found = set(iterations), {}
    for i in range(max(iterations) + 1):
        if i in wanted:
            lrs = {group['lr'] for group in runner.optim_wrapper.optimizer.param_groups}
            assert len(lrs) == 1, f'param groups differ in lr at iteration {i}: {lrs}'
            found[i] = lrs.pop()
        hook.after_train_iter(runner, batch_idx=i % epoch_length)
        if (i + 1) % epoch_length == 0:
            hook.after_train_epoch(runner)
    return found


@pytest.fixture(autouse=True)
def quiet_runner(monkeypatch) -> None:
    """Skip the Runner's environment report (it runs compilers to describe them)."""
    monkeypatch.setattr(Runner, '_log_env', lambda self, env_cfg: None, raising=False)


def assert_lr(found: dict, rule) -> None:
    for i, lr in found.items():
        assert lr == pytest.approx(rule(i), rel=1e-6, abs=1e-15), (i, lr, rule(i))


# The rules below write mmengine's convention out: a linear (or poly) schedule over iterations
# [begin, end) reaches its end value on its last iteration, end - 1; a cosine one reaches eta_min
# at end.
@pytest.mark.parametrize('name', DET_CONFIGS)
def test_det_lr_follows_the_1x_schedule(name, tmp_path):
    """AdamW 1e-4 for a total batch of 16, linear warm-up over 500 iterations from 0.001 x,
    x0.1 at epochs 8 and 11, 12 epochs (MambaOut paper, Sec. 4.2: mmdet's 1x schedule)."""
    cfg = load(name)
    epoch_length = 100

    def rule(i: int) -> float:
        epoch = i // epoch_length
        warmup = 0.001 + 0.999 * min(i, 499) / 499
        return 1e-4 * warmup * 0.1**sum(epoch >= m for m in (8, 11))

    last = 12 * epoch_length - 1
    found = lr_at(cfg, epoch_length, [0, 1, 250, 499, 500, 799, 800, 1099, 1100, last],
                  tmp_path)
    assert_lr(found, rule)
    assert recipe_runner(cfg, epoch_length, tmp_path / 'loop').train_loop.max_epochs == 12


@pytest.mark.parametrize('name', SEG_CONFIGS)
def test_seg_lr_follows_warmup_then_linear_decay(name, tmp_path):
    """AdamW 1e-4 for a total batch of 16 (MambaOut paper, Sec. 4.3), linear warm-up over 1500
    iterations from 1e-6 x, then linear decay to 0 at 160k iterations (Swin's UperNet)."""
    cfg = load(name)

    def rule(i: int) -> float:
        if i < 1500:
            return 1e-4 * (1e-6 + (1 - 1e-6) * i / 1499)
        return 1e-4 * (1 - (i - 1500) / (160000 - 1 - 1500))

    found = lr_at(cfg, 1000, [0, 750, 1500, 80000, 159999], tmp_path)
    assert_lr(found, rule)
    assert recipe_runner(cfg, 1000, tmp_path / 'loop').train_loop.max_iters == 160000


@pytest.mark.parametrize('name', CLS_CONFIGS)
def test_cls_lr_follows_warmup_then_cosine(name, tmp_path):
    """AdamW 4e-3 for a total batch of 4096, linear warm-up over 20 epochs from 1e-6 (every
    iteration), cosine decay to 1e-5 at epoch 300 (every epoch): the official training script."""
    cfg = load(name)
    epoch_length = 2

    def rule(i: int) -> float:
        if i < 20 * epoch_length:
            return 1e-6 + (4e-3 - 1e-6) * i / (20 * epoch_length - 1)
        epoch = i // epoch_length
        return 1e-5 + (4e-3 - 1e-5) * (1 + math.cos(math.pi * (epoch - 20) / 280)) / 2

    last = 300 * epoch_length - 1
    found = lr_at(cfg, epoch_length, [0, 20, 39, 40, 41, 200, 321, last], tmp_path)
    assert_lr(found, rule)
    assert recipe_runner(cfg, epoch_length, tmp_path / 'loop').train_loop.max_epochs == 300


@pytest.mark.parametrize('name, base_lr, base_batch', [
    *[(n, 1e-4, 16) for n in DET_CONFIGS + SEG_CONFIGS],
    *[(n, 4e-3, 4096) for n in CLS_CONFIGS],
])
def test_auto_scale_lr_scales_from_the_papers_total_batch(name, base_lr, base_batch, tmp_path):
    """``tools/train.py --auto-scale-lr`` on one process scales the lr by its batch over the
    paper's total batch (16 for det/seg, 4096 for cls); without it the lr is the paper's."""
    cfg = load(name)
    batch = cfg.train_dataloader.batch_size
    for auto_scale, expected in ((False, base_lr), (True, base_lr * batch / base_batch)):
        runner = recipe_runner(cfg, 1, tmp_path / str(auto_scale), auto_scale_lr=auto_scale)
        lrs = [group['lr'] for group in runner.optim_wrapper.optimizer.param_groups]
        assert lrs == [pytest.approx(expected, rel=1e-9)] * len(lrs), (auto_scale, lrs)


@pytest.mark.parametrize('name', DET_CONFIGS + SEG_CONFIGS)
def test_dense_recipes_train_in_fp16(name):
    # AmpOptimWrapper needs CUDA, so this one is read from the config
    assert load(name).optim_wrapper.type == 'AmpOptimWrapper'


def test_data_roots_default_to_the_stock_paths():
    det, seg, cls = (load(n) for n in ('mask_rcnn_mambaout_t', 'upernet_mambaout_t',
                                         'cls_mambaout_t'))
    for cfg, root in ((det, 'data/coco/'), (seg, 'data/ade/ADEChallengeData2016/'),
                      (cls, 'data/imagenet/')):
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            assert cfg[loader].dataset.data_root == root, (cfg.filename, loader)
    assert det.val_evaluator.ann_file == 'data/coco/annotations/instances_val2017.json'
    assert det.test_evaluator.ann_file == det.val_evaluator.ann_file


def test_data_roots_come_from_the_environment(monkeypatch, tmp_path):
    roots = dict(COCO_ROOT=f'{tmp_path}/coco/', ADE_ROOT=f'{tmp_path}/ade/',
                 IMAGENET_ROOT=f'{tmp_path}/imagenet/')
    for key, value in roots.items():
        monkeypatch.setenv(key, value)
    for name, key in (('mask_rcnn_mambaout_s', 'COCO_ROOT'), ('upernet_mambaout_b', 'ADE_ROOT'),
                      ('cls_mambaout_femto', 'IMAGENET_ROOT')):
        cfg = load_fresh(name)
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            assert cfg[loader].dataset.data_root == roots[key]
    det = load_fresh('mask_rcnn_mambaout_t')
    assert det.test_evaluator.ann_file == (
        f'{tmp_path}/coco/annotations/instances_val2017.json')


def test_checkpoint_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv('MAMBAOUT_S_CKPT', f'{tmp_path}/cls_s.pth')
    cfg = load_fresh('upernet_mambaout_s')
    assert cfg.model.backbone.init_cfg.checkpoint == f'{tmp_path}/cls_s.pth'


@pytest.mark.parametrize('name', ['mask_rcnn_mambaout_t', 'upernet_mambaout_t', 'cls_mambaout_t'])
def test_no_weight_decay_on_norms_and_biases(name):
    """timm's rule: 1-D parameters (norm weights and biases, anywhere in the model) get no weight
    decay, every other parameter gets the config's. Checked on what the built AdamW does: one step
    with zero gradients leaves a parameter unchanged or shrinks it by lr x weight decay."""
    cfg = tiny(load(name))
    model = build_model(cfg)
    optim_wrapper = cpu_optim_wrapper(model, cfg)
    optimizer = cfg.optim_wrapper.optimizer
    in_optimizer = [p for group in optim_wrapper.optimizer.param_groups for p in group['params']]
    assert len(in_optimizer) == len({id(p) for p in in_optimizer})
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert {id(p) for p in trainable.values()} <= {id(p) for p in in_optimizer}
    before = {n: p.detach().clone() for n, p in trainable.items()}
    for p in trainable.values():
        p.grad = torch.zeros_like(p)
    optim_wrapper.step()
    one_d = [n for n, p in trainable.items() if p.ndim <= 1]
    assert any('norm' in n for n in one_d) and any(n.endswith('.bias') for n in one_d)
    for n, p in trainable.items():
        decay = 0 if p.ndim <= 1 else optimizer.weight_decay
        expected = before[n] * (1 - optimizer.lr * decay)
        torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-12, msg=n)
        if decay:
            assert not torch.equal(p.detach(), before[n]) or not before[n].any(), n


# ---------------------------------------------------------------------------------------------
# One training step of every config with the test-only backbone size
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_one_training_step(name):
    torch.manual_seed(0)
    cfg = tiny(load(name))
    model = build_model(cfg)
    model.init_weights()
    model.train()
    optim_wrapper = cpu_optim_wrapper(model, cfg)

    grads = {}

    def keep(name, grad):
        grads[name] = grad.detach().clone()

    for param_name, param in model.backbone.named_parameters():
        param.register_hook(partial(keep, param_name))
    before = model.backbone.stem.conv1.weight.detach().clone()

    log_vars = model.train_step(BATCHES[cfg.default_scope](), optim_wrapper)

    assert torch.isfinite(log_vars['loss']) and log_vars['loss'] > 0
    assert all(torch.isfinite(v).all() for v in log_vars.values())
    trainable = {n for n, p in model.backbone.named_parameters() if p.requires_grad}
    assert set(grads) == trainable, trainable - set(grads)
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert grads['stem.conv1.weight'].abs().sum() > 0
    assert not torch.equal(before, model.backbone.stem.conv1.weight)


def test_det_forward_under_bf16_autocast_is_finite():
    """Backbone, FPN and RPN head under CPU bf16 autocast.

    The RoI stage is left out: mmcv 2.1's CPU ``nms`` (used by the RPN's proposal step) and
    ``roi_align`` have no bf16 kernels ("expected scalar type Float but found BFloat16"); the
    configs train with CUDA fp16 AMP, where mmcv has half kernels.
    """
    torch.manual_seed(0)
    cfg = tiny(load('mask_rcnn_mambaout_t'))
    model = build_model(cfg)
    model.init_weights()
    model.eval()
    data = model.data_preprocessor(det_batch(), False)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        feats = model.extract_feat(data['inputs'])
        cls_scores, bbox_preds = model.rpn_head(feats)
    assert len(feats) == 5
    for out in (*feats, *cls_scores, *bbox_preds):
        assert out.dtype == torch.bfloat16
        assert torch.isfinite(out).all()


# ---------------------------------------------------------------------------------------------
# Classifier checkpoint -> dense backbones
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize('dense', ['mask_rcnn_mambaout_t', 'upernet_mambaout_t'])
def test_classifier_checkpoint_initialises_the_dense_backbone(dense, tmp_path):
    torch.manual_seed(0)
    classifier = build_model(tiny(load('cls_mambaout_t')))
    classifier.init_weights()
    checkpoint = tmp_path / 'cls_atto.pth'
    # the layout mmengine's CheckpointHook writes
    save_checkpoint(dict(meta=dict(epoch=300), state_dict=classifier.state_dict()),
                    str(checkpoint))

    cfg = tiny(load(dense))
    cfg.model.backbone.init_cfg = dict(
        type='Pretrained', checkpoint=str(checkpoint), prefix='backbone.')
    model = build_model(cfg)
    model.init_weights()

    source = {k[len('backbone.'):]: v for k, v in classifier.state_dict().items()
              if k.startswith('backbone.')}
    target = model.backbone.state_dict()
    assert set(source) <= set(target)
    for key, value in source.items():
        assert torch.equal(target[key], value), key
    # the dense-only output norms keep their (unit) initialisation
    assert torch.equal(target['norm0.weight'], torch.ones_like(target['norm0.weight']))


# ---------------------------------------------------------------------------------------------
# Full-size parameter counts against the paper
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_parameter_count_matches_the_paper(name):
    cfg = copy.deepcopy(load(name))
    cfg.model.backbone.init_cfg = None
    model = build_model(cfg)
    params = sum(p.numel() for p in model.parameters())
    paper_params = PAPER_COMPLEXITY[name][0] * 1e6
    assert abs(params - paper_params) / paper_params < 0.02, (params, paper_params)


# ---------------------------------------------------------------------------------------------
# tools/analysis_tools/get_flops.py
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize('name,shape', [('cls_mambaout_t', (64, 64)),
                                        ('upernet_mambaout_t', (64, 64)),
                                        ('mask_rcnn_mambaout_t', (64, 96))])
def test_get_flops_counts_tiny_models(name, shape):
    cfg = tiny(load(name))
    if cfg.default_scope == 'mmdet':
        cfg.model.test_cfg.rpn.max_per_img = 50
    result = GET_FLOPS.measure(cfg, *shape)
    assert result['input_shape'] == shape
    assert result['macs'] > 0
    model = build_model(cfg)
    assert result['params'] == sum(p.numel() for p in model.parameters())
    if cfg.default_scope == 'mmseg':
        aux = sum(p.numel() for p in model.auxiliary_head.parameters())
        assert result['params_counted'] == result['params'] - aux
    else:
        assert result['params_counted'] == result['params']
    if cfg.default_scope == 'mmdet':
        assert result['num_rois'] == dict(bbox_roi_extractor=50, mask_roi_extractor=50)


def test_get_flops_macs_of_mambaout_t_classifier_match_the_paper():
    result = GET_FLOPS.measure(load('cls_mambaout_t'), 224, 224)
    paper_macs = PAPER_COMPLEXITY['cls_mambaout_t'][1] * 1e9
    assert abs(result['macs'] - paper_macs) / paper_macs < 0.02, result['macs']
