"""The VMamba configs: they load, follow the VMamba release's recipes (checked on the built
optimizer, schedulers and hooks, against the release's numbers written out here), build, train
one step on a tiny CPU input (with the test-only backbone size), carry classifier weights into
the dense models, and the full-size models have the release's parameter counts."""
import copy
import importlib.util
import math
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mmengine.registry import HOOKS
from mmengine.runner.checkpoint import save_checkpoint

REPO = Path(__file__).resolve().parents[2]


def _load_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


helpers = _load_module('config_helpers', Path(__file__).parent / 'config_helpers.py')
GET_FLOPS = _load_module('get_flops', REPO / 'tools' / 'analysis_tools' / 'get_flops.py')
load, load_fresh, build_model = helpers.load, helpers.load_fresh, helpers.build_model

SIZES = ('t', 's', 'b')
DET_CONFIGS = [f'mask_rcnn_vmamba_{s}' for s in SIZES]
SEG_CONFIGS = [f'upernet_vmamba_{s}' for s in SIZES]
CLS_CONFIGS = [f'cls_vmamba_{s}' for s in SIZES]
ALL_CONFIGS = DET_CONFIGS + SEG_CONFIGS + CLS_CONFIGS
TOY_CONFIGS = ['toy/mask_rcnn_vmamba_toy', 'toy/upernet_vmamba_toy']
TINY_ARCH = 'atto'  # the backbone's test-only size

# The VMamba v2 release (github.com/MzeroMiko/VMamba README and configs/vssm/vmambav2*_224.yaml):
# stage widths, classifier drop path, the drop path of the dense models (issue 10) and the
# ImageNet-1k classifier file of each size.
RELEASE = {
    't': dict(arch='tiny', dims=[96, 192, 384, 768], cls_drop_path=0.2, dense_drop_path=0.2,
              checkpoint='%23v2cls/vssm1_tiny_0230s_ckpt_epoch_264.pth'),
    's': dict(arch='small', dims=[96, 192, 384, 768], cls_drop_path=0.3, dense_drop_path=0.3,
              checkpoint='%23v2cls/vssm_small_0229_ckpt_epoch_222.pth'),
    'b': dict(arch='base', dims=[128, 256, 512, 1024], cls_drop_path=0.6, dense_drop_path=0.6,
              checkpoint='%23v2cls/vssm_base_0229_ckpt_epoch_237.pth'),
}
RELEASE_URL = 'https://github.com/MzeroMiko/VMamba/releases/download/'


def size_of(name: str) -> str:
    return name.rsplit('_', 1)[1]


def output_channels(arch) -> list:
    """Channels of the four NCHW maps a VMamba of ``arch`` returns, with their strides checked."""
    from mmmamba.models.backbones.vmamba import VMamba

    backbone = VMamba(arch=arch, out_indices=(0, 1, 2, 3)).eval()
    with torch.no_grad():
        outs = backbone(torch.zeros(1, 3, 64, 64))
    assert [tuple(o.shape[2:]) for o in outs] == [(16, 16), (8, 8), (4, 4), (2, 2)]
    return [o.shape[1] for o in outs]


def tiny(cfg):
    """The config's model with the test-only backbone size and no pretrained weights."""
    cfg = copy.deepcopy(cfg)
    model = cfg.model
    dims = output_channels(TINY_ARCH)
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


# ---------------------------------------------------------------------------------------------
# Loading and settings
# ---------------------------------------------------------------------------------------------
def test_the_config_list_is_complete():
    # the task configs this file covers (other VMamba configs, e.g. linear probes, have theirs)
    found = {p.stem for task in ('mask_rcnn', 'upernet', 'cls')
             for p in helpers.CONFIG_DIR.glob(f'{task}_vmamba_*.py')}
    assert found == set(ALL_CONFIGS)
    toys = {f'toy/{p.stem}' for p in (helpers.CONFIG_DIR / 'toy').glob('*vmamba*.py')}
    assert toys == set(TOY_CONFIGS)
    assert {k for k in GET_FLOPS.PAPER_COMPLEXITY if 'vmamba' in k} == set(ALL_CONFIGS)


@pytest.mark.parametrize('name', ALL_CONFIGS + TOY_CONFIGS)
def test_config_loads_with_custom_imports(name):
    cfg = load(name)
    assert cfg.custom_imports == dict(imports=['mmmamba'], allow_failed_imports=False)
    assert cfg.model.backbone.type == 'mmmamba.VMamba'
    assert 'data_preprocessor' in cfg.model
    assert cfg.default_scope in ('mmdet', 'mmseg', 'mmpretrain')


@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_widths_and_drop_path_follow_the_arch(name):
    cfg = load(name)
    release = RELEASE[size_of(name)]
    backbone = cfg.model.backbone
    assert backbone.arch == release['arch']
    dims = output_channels(backbone.arch)
    assert dims == release['dims']
    if cfg.default_scope == 'mmdet':
        assert list(cfg.model.neck.in_channels) == dims
        assert tuple(backbone.out_indices) == (0, 1, 2, 3)
        assert backbone.drop_path_rate == release['dense_drop_path']
    elif cfg.default_scope == 'mmseg':
        assert list(cfg.model.decode_head.in_channels) == dims
        assert cfg.model.auxiliary_head.in_index == 2
        assert cfg.model.auxiliary_head.in_channels == dims[2]
        assert cfg.model.decode_head.num_classes == cfg.model.auxiliary_head.num_classes == 150
        assert backbone.drop_path_rate == release['dense_drop_path']
    else:
        # the release's classifier: last-stage norm (the backbone's norm3), average pool, linear
        assert tuple(backbone.out_indices) == (3, )
        assert backbone.get('out_norm', True) is True
        assert cfg.model.neck.type == 'GlobalAveragePooling'
        assert cfg.model.head.type == 'LinearClsHead'
        assert cfg.model.head.in_channels == dims[-1]
        assert backbone.drop_path_rate == release['cls_drop_path']


@pytest.mark.parametrize('name', DET_CONFIGS + SEG_CONFIGS)
def test_dense_configs_load_imagenet_weights_into_the_backbone(name):
    init_cfg = load(name).model.backbone.init_cfg
    assert init_cfg.type == 'Pretrained'
    assert init_cfg.prefix == 'backbone.'
    assert init_cfg.checkpoint == RELEASE_URL + RELEASE[size_of(name)]['checkpoint']


def test_checkpoint_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv('VMAMBA_B_CKPT', f'{tmp_path}/cls_b.pth')
    for name in ('mask_rcnn_vmamba_b', 'upernet_vmamba_b'):
        cfg = load_fresh(name)
        assert cfg.model.backbone.init_cfg.checkpoint == f'{tmp_path}/cls_b.pth'


def test_data_roots_come_from_the_environment(monkeypatch, tmp_path):
    roots = dict(COCO_ROOT=f'{tmp_path}/coco/', ADE_ROOT=f'{tmp_path}/ade/',
                 IMAGENET_ROOT=f'{tmp_path}/imagenet/')
    for key, value in roots.items():
        monkeypatch.setenv(key, value)
    for name, key in (('mask_rcnn_vmamba_s', 'COCO_ROOT'), ('upernet_vmamba_t', 'ADE_ROOT'),
                      ('cls_vmamba_b', 'IMAGENET_ROOT')):
        cfg = load_fresh(name)
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            assert cfg[loader].dataset.data_root == roots[key]
    assert load_fresh('mask_rcnn_vmamba_t').test_evaluator.ann_file == (
        f'{tmp_path}/coco/annotations/instances_val2017.json')


@pytest.mark.parametrize('name', ['mask_rcnn_vmamba_t', 'upernet_vmamba_t', 'cls_vmamba_t'])
def test_no_weight_decay_on_ssm_parameters_norms_and_biases(name):
    cfg = tiny(load(name))
    model = build_model(cfg)
    optim_wrapper = helpers.cpu_optim_wrapper(model, cfg)
    decay = cfg.optim_wrapper.optimizer.weight_decay
    by_param = {id(p): group['weight_decay']
                for group in optim_wrapper.optimizer.param_groups for p in group['params']}
    named = dict(model.backbone.named_parameters())
    a_logs = [n for n in named if n.endswith('A_log')]
    ds = [n for n in named if n.endswith('.D')]
    assert a_logs and ds, sorted(named)
    assert all(named[n].dim() == 2 for n in a_logs)
    for n, p in named.items():
        if n in a_logs or p.dim() == 1:  # A_log, D, norm weights, biases
            assert by_param[id(p)] == 0, n
        else:  # convolution and linear weights
            assert by_param[id(p)] == decay, n


# ---------------------------------------------------------------------------------------------
# The recipes, read off the built optimizer, schedulers and hooks
# ---------------------------------------------------------------------------------------------
# A linear warm-up over W iterations, as mmengine's LinearLR runs it: the base lr is reached at
# iteration W - 1 (the release's timm scheduler reaches it at W).
def warmup_factor(it: int, start: float, iters: int) -> float:
    return start + (1 - start) * min(it, iters - 1) / (iters - 1)


@pytest.mark.parametrize('name', DET_CONFIGS)
def test_det_lr_schedule(name):
    """Swin's Mask R-CNN 1x (which the release inherits): lr 1e-4 at batch 16, linear warm-up
    over 1000 iterations from 1e-4 x 0.001, x0.1 after epochs 8 and 11."""
    cfg = load(name)
    assert cfg.train_dataloader.batch_size * 4 == 16  # 4 GPUs
    epoch_length = 200
    lrs = helpers.lr_trace(cfg, epoch_length)
    assert len(lrs) == 12 * epoch_length

    def release(it):
        warmup = warmup_factor(it, 0.001, 1000)
        epoch = it // epoch_length
        return 1e-4 * warmup * (0.1 if epoch >= 8 else 1) * (0.1 if epoch >= 11 else 1)

    for it in (0, 1, 500, 999, 1000, 1599, 1600, 2199, 2200, 2399):
        assert lrs[it] == pytest.approx(release(it), rel=1e-6), it
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.05


@pytest.mark.parametrize('name', SEG_CONFIGS)
def test_seg_lr_schedule(name):
    """Swin's UperNet 160k: lr 6e-5 at batch 16, linear warm-up over 1500 iterations from
    6e-5 x 1e-6, then linear decay to 0 at the last iteration (mmengine's PolyLR reaches
    eta_min at iteration end - 1)."""
    cfg = load(name)
    assert cfg.train_dataloader.batch_size * 4 == 16  # 4 GPUs
    lrs = helpers.lr_trace(cfg, epoch_length=1)
    assert len(lrs) == 160000

    def release(it):
        if it < 1500:
            return 6e-5 * warmup_factor(it, 1e-6, 1500)
        return 6e-5 * (1 - (it - 1500) / (160000 - 1 - 1500))

    for it in (0, 750, 1499, 1500, 80000, 159000, 159999):
        assert lrs[it] == pytest.approx(release(it), rel=1e-6, abs=1e-15), it
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.01


@pytest.mark.parametrize('name', CLS_CONFIGS)
def test_cls_lr_schedule(name):
    """The release (Swin's recipe): lr 5e-4 x total batch / 512 with the release's 8 GPUs x 128,
    20 warm-up epochs from 5e-7 x batch / 512, cosine to 5e-6 x batch / 512 over the other 280,
    both stepped every iteration."""
    cfg = load(name)
    total_batch = 8 * cfg.train_dataloader.batch_size
    scale = total_batch / 512
    base, warmup_start, final = 5e-4 * scale, 5e-7 * scale, 5e-6 * scale
    epoch_length = 10
    lrs = helpers.lr_trace(cfg, epoch_length)
    assert len(lrs) == 300 * epoch_length
    warmup_iters, total_iters = 20 * epoch_length, 300 * epoch_length

    def release(it):
        if it < warmup_iters:
            return base * warmup_factor(it, warmup_start / base, warmup_iters)
        progress = (it - warmup_iters) / (total_iters - warmup_iters)
        return final + (base - final) * 0.5 * (1 + math.cos(math.pi * progress))

    for it in (0, 1, 100, 199, 200, 201, 1000, 1600, 2500, 2999):
        assert lrs[it] == pytest.approx(release(it), rel=1e-4), it


@pytest.mark.parametrize('total_batch', [256, 512, 2048])
def test_cls_lr_scales_with_the_total_batch(total_batch):
    """``--auto-scale-lr``: mmengine's Runner multiplies lr by total batch / base_batch_size;
    the release's rule is 5e-4 x total batch / 512."""
    cfg = load('cls_vmamba_t')
    scaled = cfg.optim_wrapper.optimizer.lr * total_batch / cfg.auto_scale_lr.base_batch_size
    assert scaled == pytest.approx(5e-4 * total_batch / 512, rel=1e-12)


def test_cls_clips_the_gradient_norm_at_5():
    torch.manual_seed(0)
    cfg = tiny(load('cls_vmamba_t'))
    model = build_model(cfg)
    optim_wrapper = helpers.cpu_optim_wrapper(model, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.grad = torch.full_like(p, 10.)
    optim_wrapper.step()
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
    assert norm.item() == pytest.approx(5.0, rel=1e-5)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'


def test_cls_keeps_an_ema_of_the_weights_with_decay_0_9999():
    cfg = load('cls_vmamba_t')
    hook_cfgs = [h for h in cfg.custom_hooks if h.type == 'EMAHook']
    assert len(hook_cfgs) == 1
    hook_cfg = copy.deepcopy(hook_cfgs[0])
    assert hook_cfg.pop('priority') == 'ABOVE_NORMAL'  # read by the Runner, not the hook
    hook = HOOKS.build(hook_cfg)
    model = torch.nn.Linear(3, 2)
    runner = SimpleNamespace(model=model, iter=0, epoch=0)
    hook.before_run(runner)
    hook.after_train_iter(runner, batch_idx=0)  # the first update copies the weights
    before = hook.ema_model.module.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    runner.iter = 1
    hook.after_train_iter(runner, batch_idx=1)
    expected = 0.9999 * before + 0.0001 * model.weight.detach()
    torch.testing.assert_close(hook.ema_model.module.weight, expected, rtol=0, atol=1e-7)


def test_cls_data_recipe():
    """RandAugment m9 / mstd 0.5, random erasing 0.25, Mixup 0.8, CutMix 1.0, label smoothing
    0.1; test: short side 256, centre crop 224."""
    cfg = load('cls_vmamba_t')
    train = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    assert (train['RandAugment'].magnitude_level, train['RandAugment'].magnitude_std) == (9, 0.5)
    assert train['RandomErasing'].erase_prob == 0.25
    augments = [(a.type, a.alpha) for a in cfg.model.train_cfg.augments]
    assert augments == [('Mixup', 0.8), ('CutMix', 1.0)]
    assert cfg.model.head.loss.label_smooth_val == 0.1
    test = {t.type: t for t in cfg.val_dataloader.dataset.pipeline}
    assert (test['ResizeEdge'].scale, test['CenterCrop'].crop_size) == (256, 224)
    assert cfg.train_cfg.max_epochs == 300


# ---------------------------------------------------------------------------------------------
# One training step of every config with the test-only backbone size (toys at their own size)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize('name', ALL_CONFIGS + TOY_CONFIGS)
def test_one_training_step(name):
    torch.manual_seed(0)
    cfg = load(name)
    if not name.startswith('toy/'):
        cfg = tiny(cfg)
    model = build_model(cfg)
    model.init_weights()
    model.train()
    optim_wrapper = helpers.cpu_optim_wrapper(model, cfg)

    grads = {}

    def keep(name, grad):
        grads[name] = grad.detach().clone()

    for param_name, param in model.backbone.named_parameters():
        param.register_hook(partial(keep, param_name))
    first_name, first = next(iter(model.backbone.named_parameters()))
    before = first.detach().clone()

    log_vars = model.train_step(helpers.batch_for(cfg), optim_wrapper)

    assert torch.isfinite(log_vars['loss']) and log_vars['loss'] > 0
    assert all(torch.isfinite(v).all() for v in log_vars.values())
    trainable = {n for n, p in model.backbone.named_parameters() if p.requires_grad}
    assert set(grads) == trainable, trainable - set(grads)
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert any(g.abs().sum() > 0 for n, g in grads.items() if n.endswith('A_log'))
    assert grads[first_name].abs().sum() > 0
    assert not torch.equal(before, first)


# ---------------------------------------------------------------------------------------------
# Classifier checkpoint -> dense backbones
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize('dense', ['mask_rcnn_vmamba_t', 'upernet_vmamba_t'])
def test_classifier_checkpoint_initialises_the_dense_backbone(dense, tmp_path):
    torch.manual_seed(0)
    classifier = build_model(tiny(load('cls_vmamba_t')))
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
    # the classifier's last-stage norm is the dense model's norm3; norm0 (dense only) keeps its
    # unit initialisation
    assert 'norm3.weight' in source
    assert torch.equal(target['norm0.weight'], torch.ones_like(target['norm0.weight']))


# ---------------------------------------------------------------------------------------------
# Full-size parameter counts against the release
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_parameter_count_matches_the_release(name):
    cfg = load(name)
    cfg.model.backbone.init_cfg = None
    model = build_model(cfg)
    params = sum(p.numel() for p in model.parameters())
    release_params = GET_FLOPS.PAPER_COMPLEXITY[name][0] * 1e6
    # the release gives whole millions: up to 0.5M of rounding
    assert abs(params - release_params) <= 0.5e6 + 0.01 * release_params, (params, release_params)
