"""The Vim configs: they load, follow the Vim release's recipes where they say so (checked on the
built optimizer, schedulers and hooks against the release's numbers written out here), apply
layer-wise lr decay to the Vim layers, train one step on a tiny CPU input with the test-only
backbone size, carry classifier weights into the dense models, and the full-size classifiers
have the release's parameter counts."""
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


def _load_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


helpers = _load_module('config_helpers', Path(__file__).parent / 'config_helpers.py')
load, load_fresh, build_model = helpers.load, helpers.load_fresh, helpers.build_model

SIZES = ('ti', 's')
DET_CONFIGS = [f'mask_rcnn_vim_{s}' for s in SIZES]
SEG_CONFIGS = [f'upernet_vim_{s}' for s in SIZES]
CLS_CONFIGS = [f'cls_vim_{s}' for s in SIZES]
ALL_CONFIGS = DET_CONFIGS + SEG_CONFIGS + CLS_CONFIGS
TOY_CONFIGS = ['toy/mask_rcnn_vim_toy', 'toy/upernet_vim_toy']
TINY_ARCH = 'atto'  # the backbone's test-only size: 32 channels, 4 layers
TINY_CHANNELS, TINY_LAYERS = 32, 4

# The Vim release (github.com/hustvl/Vim README, vim/scripts/pt-vim-{t,s}.sh): width, 24 layers,
# classifier drop path, per-GPU batch (8 GPUs), lr per 512 images, params of the classifier
# and its ImageNet-1k file on huggingface.co/hustvl.
RELEASE = {
    'ti': dict(arch='tiny', channels=192, cls_drop_path=0.1, gpu_batch=128, lr_per_512=5e-4,
               params=7e6,
               checkpoint='Vim-tiny-midclstok/resolve/main/vim_t_midclstok_76p1acc.pth'),
    's': dict(arch='small', channels=384, cls_drop_path=0.05, gpu_batch=64, lr_per_512=1e-3,
              params=26e6,
              checkpoint='Vim-small-midclstok/resolve/main/vim_s_midclstok_80p5acc.pth'),
}
RELEASE_URL = 'https://huggingface.co/hustvl/'
# The release's UperNet (seg/configs/vim/upernet/): layers 5, 11, 17, 23; AdamW lr 1e-4,
# wd 0.05, layer decay 0.92; slide inference crop 512 stride 341.
SEG_OUT_INDICES = (5, 11, 17, 23)
LAYER_DECAY = 0.92


def size_of(name: str) -> str:
    return name.rsplit('_', 1)[1]


def tiny(cfg):
    """The config's model with the test-only backbone size and no pretrained weights."""
    return helpers.isotropic_tiny(cfg, TINY_ARCH, TINY_CHANNELS, TINY_LAYERS, TINY_CHANNELS)


def without_layer_decay(cfg):
    """The config's optimizer with the default constructor, for tracing the schedule on a model
    without a backbone (the schedule does not depend on the constructor)."""
    cfg = copy.deepcopy(cfg)
    cfg.optim_wrapper.pop('constructor', None)
    cfg.optim_wrapper.pop('paramwise_cfg', None)
    return cfg


# ---------------------------------------------------------------------------------------------
# Loading and settings
# ---------------------------------------------------------------------------------------------
def test_the_config_list_is_complete():
    found = {p.stem for task in ('mask_rcnn', 'upernet', 'cls')
             for p in helpers.CONFIG_DIR.glob(f'{task}_vim_*.py')}
    assert found == set(ALL_CONFIGS)
    toys = {f'toy/{p.stem}' for p in (helpers.CONFIG_DIR / 'toy').glob('*_vim_*.py')}
    assert toys == set(TOY_CONFIGS)


@pytest.mark.parametrize('name', ALL_CONFIGS + TOY_CONFIGS)
def test_config_loads_with_custom_imports(name):
    cfg = load(name)
    assert cfg.custom_imports == dict(imports=['mmmamba'], allow_failed_imports=False)
    assert cfg.model.backbone.type == 'mmmamba.Vim'
    assert 'data_preprocessor' in cfg.model
    assert cfg.default_scope in ('mmdet', 'mmseg', 'mmpretrain')


@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_widths_and_outputs_follow_the_arch(name):
    cfg = load(name)
    release = RELEASE[size_of(name)]
    backbone, channels = cfg.model.backbone, release['channels']
    assert backbone.arch == release['arch']
    if cfg.default_scope == 'mmdet':
        # the last layer's stride-16 map -> the simple pyramid -> FPN
        assert tuple(backbone.out_indices) == (-1, ) and backbone.out_type == 'featmap'
        pyramid, fpn = cfg.model.neck
        assert pyramid.type == 'mmmamba.SimpleFeaturePyramid'
        assert pyramid.in_channels == channels
        assert fpn.type == 'FPN' and list(fpn.in_channels) == [pyramid.out_channels] * 4
        assert fpn.num_outs == 5
    elif cfg.default_scope == 'mmseg':
        assert tuple(backbone.out_indices) == SEG_OUT_INDICES
        assert cfg.model.neck.type == 'mmmamba.SimpleFeaturePyramid'
        assert cfg.model.neck.in_channels == channels
        assert list(cfg.model.decode_head.in_channels) == [channels] * 4
        assert cfg.model.decode_head.channels == channels
        assert cfg.model.auxiliary_head.in_channels == channels
        assert cfg.model.decode_head.num_classes == cfg.model.auxiliary_head.num_classes == 150
        assert cfg.model.test_cfg == dict(mode='slide', crop_size=(512, 512), stride=(341, 341))
    else:
        assert tuple(backbone.out_indices) == (-1, ) and backbone.out_type == 'cls_token'
        assert cfg.model.neck is None
        assert cfg.model.head.type == 'LinearClsHead'
        assert cfg.model.head.in_channels == channels
        assert backbone.drop_path_rate == release['cls_drop_path']


@pytest.mark.parametrize('name', DET_CONFIGS + SEG_CONFIGS)
def test_dense_configs_load_imagenet_weights_into_the_backbone(name):
    init_cfg = load(name).model.backbone.init_cfg
    assert init_cfg.type == 'Pretrained'
    assert init_cfg.prefix == 'backbone.'
    assert init_cfg.checkpoint == RELEASE_URL + RELEASE[size_of(name)]['checkpoint']


def test_checkpoint_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv('VIM_S_CKPT', f'{tmp_path}/cls_s.pth')
    for name in ('mask_rcnn_vim_s', 'upernet_vim_s'):
        assert load_fresh(name).model.backbone.init_cfg.checkpoint == f'{tmp_path}/cls_s.pth'


# ---------------------------------------------------------------------------------------------
# Optimizers: layer decay in det/seg, weight decay everywhere
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize('name', ['mask_rcnn_vim_ti', 'upernet_vim_ti', 'toy/mask_rcnn_vim_toy'])
def test_dense_configs_decay_the_lr_layer_by_layer(name):
    cfg = load(name)
    if not name.startswith('toy/'):
        cfg = tiny(cfg)
    model = build_model(cfg)
    num_layers = model.backbone.num_layers
    groups = {id(p): g for g in helpers.cpu_optim_wrapper(model, cfg).optimizer.param_groups
              for p in g['params']}
    lr = cfg.optim_wrapper.optimizer.lr
    # ids: embeddings 0, layer i -> i + 1, everything after the layers num_layers + 1
    top = num_layers + 1
    for param_name, param in model.named_parameters():
        name = param_name[len('backbone.'):] if param_name.startswith('backbone.') else None
        if name is None or name.startswith('norm_f'):
            layer_id = top
        elif name.startswith('layers.'):
            layer_id = int(name.split('.')[1]) + 1
        else:  # patch_embed, pos_embed, cls_token, cls_pos_embed
            layer_id = 0
        assert groups[id(param)]['lr'] == pytest.approx(LAYER_DECAY**(top - layer_id) * lr), \
            param_name


@pytest.mark.parametrize('name', ['mask_rcnn_vim_ti', 'upernet_vim_ti', 'cls_vim_ti'])
def test_no_weight_decay_on_embeddings_ssm_parameters_norms_and_biases(name):
    cfg = tiny(load(name))
    model = build_model(cfg)
    optim_wrapper = helpers.cpu_optim_wrapper(model, cfg)
    decay = cfg.optim_wrapper.optimizer.weight_decay
    by_param = {id(p): group['weight_decay']
                for group in optim_wrapper.optimizer.param_groups for p in group['params']}
    named = dict(model.backbone.named_parameters())
    exempt = ('pos_embed', 'cls_token', 'cls_pos_embed', 'A_log', 'D', 'dt_proj_bias')
    found = {n.rsplit('.', 1)[-1] for n in named} & set(exempt)
    assert found == set(exempt), sorted(named)
    for n, p in named.items():
        if n.rsplit('.', 1)[-1] in exempt or p.dim() == 1:  # + norm weights and biases
            assert by_param[id(p)] == 0, n
        else:  # projections, convolutions
            assert by_param[id(p)] == decay, n


# ---------------------------------------------------------------------------------------------
# The schedules, read off the built schedulers
# ---------------------------------------------------------------------------------------------
def warmup_factor(it: int, start: float, iters: int) -> float:
    """mmengine's LinearLR: the base lr is reached at step ``iters - 1``."""
    return start + (1 - start) * min(it, iters - 1) / (iters - 1)


@pytest.mark.parametrize('name', SEG_CONFIGS)
def test_seg_lr_schedule(name):
    """The release: lr 1e-4, 1500 warm-up iterations from lr x 1e-6, then poly (power 1) to 0 —
    here over 160k iterations at a total batch of 16, reaching 0 at the last iteration."""
    cfg = load(name)
    assert cfg.train_dataloader.batch_size * 4 == 16  # 4 GPUs
    lrs = helpers.lr_trace(without_layer_decay(cfg), epoch_length=1)
    assert len(lrs) == 160000

    def release(it):
        if it < 1500:
            return 1e-4 * warmup_factor(it, 1e-6, 1500)
        return 1e-4 * (1 - (it - 1500) / (160000 - 1 - 1500))

    for it in (0, 750, 1499, 1500, 80000, 159999):
        assert lrs[it] == pytest.approx(release(it), rel=1e-6, abs=1e-15), it
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.05
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == LAYER_DECAY


@pytest.mark.parametrize('name', DET_CONFIGS)
def test_det_optimizer(name):
    cfg = load(name)
    assert cfg.train_dataloader.batch_size * 4 == 16  # 4 GPUs
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.optim_wrapper.optimizer.lr == 1e-4
    assert cfg.optim_wrapper.constructor == 'mmmamba.LayerDecayOptimWrapperConstructor'
    assert cfg.train_cfg.max_epochs == 12


@pytest.mark.parametrize('name', CLS_CONFIGS)
def test_cls_lr_schedule(name):
    """The release (DeiT's main.py): lr (per 512 images) x total batch / 512 on 8 GPUs, 5 warm-up
    epochs from 1e-6, cosine to 1e-5 by epoch 300, stepped once per epoch."""
    cfg = load(name)
    release = RELEASE[size_of(name)]
    assert cfg.train_dataloader.batch_size == release['gpu_batch']
    base = release['lr_per_512'] * 8 * release['gpu_batch'] / 512
    epoch_length = 3
    lrs = helpers.lr_trace(cfg, epoch_length)
    assert len(lrs) == 300 * epoch_length

    def expected(epoch):
        if epoch < 5:  # timm's warm-up: from 1e-6, reaching lr at epoch 5
            return 1e-6 + epoch * (base - 1e-6) / 5
        return 1e-5 + (base - 1e-5) * 0.5 * (1 + math.cos(math.pi * (epoch - 5) / 295))

    for epoch in (0, 1, 4, 5, 6, 100, 200, 299):
        for it in range(epoch * epoch_length, (epoch + 1) * epoch_length):
            assert lrs[it] == pytest.approx(expected(epoch), rel=1e-6), (epoch, it)
    # --auto-scale-lr: lr x total batch / base_batch_size is the release's linear rule
    assert cfg.optim_wrapper.optimizer.lr / cfg.auto_scale_lr.base_batch_size == pytest.approx(
        release['lr_per_512'] / 512)
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.05
    assert cfg.optim_wrapper.type == 'OptimWrapper'  # the release trains in fp32
    assert 'clip_grad' not in cfg.optim_wrapper


def test_cls_keeps_an_ema_of_the_weights_with_decay_0_99996():
    cfg = load('cls_vim_ti')
    hook_cfgs = [h for h in cfg.custom_hooks if h.type == 'EMAHook']
    assert len(hook_cfgs) == 1
    hook_cfg = copy.deepcopy(hook_cfgs[0])
    hook_cfg.pop('priority')  # the Runner's, not the hook's
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
    expected = 0.99996 * before + 0.00004 * model.weight.detach()
    torch.testing.assert_close(hook.ema_model.module.weight, expected, rtol=0, atol=1e-7)


def test_cls_data_recipe():
    """DeiT's: RandAugment m9 / mstd 0.5, random erasing 0.25, Mixup 0.8, CutMix 1.0, label
    smoothing 0.1, repeated augmentation (3 repeats); test: short side 256, centre crop 224."""
    cfg = load('cls_vim_s')
    train = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    assert (train['RandAugment'].magnitude_level, train['RandAugment'].magnitude_std) == (9, 0.5)
    assert train['RandomErasing'].erase_prob == 0.25
    assert [(a.type, a.alpha) for a in cfg.model.train_cfg.augments] == [('Mixup', 0.8),
                                                                        ('CutMix', 1.0)]
    assert cfg.model.head.loss.label_smooth_val == 0.1
    from mmpretrain.datasets import RepeatAugSampler
    from mmpretrain.registry import DATA_SAMPLERS
    sampler = DATA_SAMPLERS.build(cfg.train_dataloader.sampler,
                                  default_args=dict(dataset=list(range(10))))
    assert isinstance(sampler, RepeatAugSampler) and sampler.num_repeats == 3
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
    params = dict(model.backbone.named_parameters())
    before = {n: p.detach().clone() for n, p in params.items()}
    grads = {}  # the optimizer wrapper zeroes .grad after its step: keep them on the way
    for param_name, param in params.items():
        param.register_hook(partial(grads.__setitem__, param_name))

    log_vars = model.train_step(helpers.batch_for(cfg), optim_wrapper)

    assert torch.isfinite(log_vars['loss']) and log_vars['loss'] > 0
    assert all(torch.isfinite(v).all() for v in log_vars.values())
    no_grad = [n for n in params if n not in grads or not grads[n].abs().sum() > 0]
    assert not no_grad
    assert all(torch.isfinite(g).all() for g in grads.values())
    # the first and the last layers' parameters moved
    for key in ('patch_embed.proj.weight', f'layers.{model.backbone.num_layers - 1}.mixer.'
                'in_proj.weight', 'layers.0.mixer.ssm.A_log'):
        assert not torch.equal(before[key], params[key]), key


# ---------------------------------------------------------------------------------------------
# Classifier checkpoint -> dense backbones
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize('dense', ['mask_rcnn_vim_ti', 'upernet_vim_ti'])
def test_classifier_checkpoint_initialises_the_dense_backbone(dense, tmp_path):
    torch.manual_seed(0)
    classifier = build_model(tiny(load('cls_vim_ti')))
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
    assert set(source) == set(target)
    for key, value in source.items():
        assert torch.equal(target[key], value), key


# ---------------------------------------------------------------------------------------------
# Full-size classifiers against the release
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize('name', CLS_CONFIGS)
def test_classifier_parameter_count_matches_the_release(name):
    model = build_model(load(name))
    params = sum(p.numel() for p in model.parameters())
    release_params = RELEASE[size_of(name)]['params']
    # the release gives whole millions: up to 0.5M of rounding
    assert abs(params - release_params) <= 0.5e6, (params, release_params)
