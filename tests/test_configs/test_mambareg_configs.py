"""The Mamba-Reg configs: they load, the dense ones put the release's classifier into a MambaReg
backbone with Vim's dense recipes, and the classifier follows the release's three-stage recipe
(github.com/wangf3014/Mamba-Reg README, "Training"; DeiT's main.py behind it), checked on the
built schedulers and pipelines against those numbers written out here. Every config trains
one step on a tiny CPU input with the test-only backbone size, stage-1 weights carry into
stage 2 at the larger input, and the full-size classifiers have the paper's parameter counts.
"""
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.runner.checkpoint import save_checkpoint


def _load_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


helpers = _load_module('config_helpers', Path(__file__).parent / 'config_helpers.py')
load, load_fresh, build_model = helpers.load, helpers.load_fresh, helpers.build_model

DET_CONFIGS = ['mask_rcnn_mambareg_s']
SEG_CONFIGS = ['upernet_mambareg_s', 'upernet_mambareg_b']
STAGES = ('', '_mid224', '_ft224')
CLS_CONFIGS = [f'cls_mambareg_{s}{stage}' for s in ('s', 'b') for stage in STAGES]
ALL_CONFIGS = DET_CONFIGS + SEG_CONFIGS + CLS_CONFIGS
# test-only size: 32 channels, 4 layers, 4 registers reduced 32 -> 16 (a 64-wide representation)
TINY_ARCH, TINY_CHANNELS, TINY_LAYERS, TINY_REPRESENTATION = 'atto', 32, 4, 64

# Release and paper: width; registers x reduced width of the representation; classifier params
# (Mamba-R paper, 28M / 99M); the release's ImageNet-1k files on huggingface.co/Wangf3014.
RELEASE = {
    's': dict(arch='small', channels=384, representation=12 * 192, params=28e6),
    'b': dict(arch='base', channels=768, representation=12 * 192, params=99e6),
}
RELEASE_URL = 'https://huggingface.co/Wangf3014/Mamba-Reg/resolve/main/mambar_{}_patch16_224.pth'
# Per stage: input size, epochs, lr per 512 images (None: not scaled), weight decay, drop path,
# per-GPU batch (8 GPUs).
STAGE = {
    '': dict(size=128, epochs=300, lr_per_512=5e-4, wd=0.05, drop_path=0.1, gpu_batch=128),
    '_mid224': dict(size=224, epochs=100, lr_per_512=2e-4, wd=0.05, drop_path=0.4, gpu_batch=128),
    '_ft224': dict(size=224, epochs=20, lr=1e-5, wd=0.1, drop_path=0.4, gpu_batch=64),
}


def size_of(name: str) -> str:
    parts = name.split('_')
    return parts[parts.index('mambareg') + 1]


def stage_of(name: str) -> str:
    return next(s for s in STAGES[::-1] if name.endswith(s))


def tiny(cfg):
    """The config's model with the test-only backbone size, no pretrained weights and no
    checkpoint to resume the fine-tuning stage from."""
    cfg = helpers.isotropic_tiny(cfg, TINY_ARCH, TINY_CHANNELS, TINY_LAYERS, TINY_REPRESENTATION)
    cfg.pop('load_from', None)
    return cfg


def test_the_config_list_is_complete():
    found = {p.stem for task in ('mask_rcnn', 'upernet', 'cls')
             for p in helpers.CONFIG_DIR.glob(f'{task}_mambareg_*.py')}
    assert found == set(ALL_CONFIGS)


@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_config_loads_with_a_mambareg_backbone(name):
    cfg = load(name)
    assert cfg.custom_imports == dict(imports=['mmmamba'], allow_failed_imports=False)
    backbone = cfg.model.backbone
    assert backbone.type == 'mmmamba.MambaReg'
    assert backbone.arch == RELEASE[size_of(name)]['arch']
    channels = RELEASE[size_of(name)]['channels']
    if cfg.default_scope == 'mmdet':
        assert tuple(backbone.out_indices) == (-1, ) and backbone.out_type == 'featmap'
        assert cfg.model.neck[0].in_channels == channels
    elif cfg.default_scope == 'mmseg':
        assert tuple(backbone.out_indices) == (5, 11, 17, 23) and backbone.out_type == 'featmap'
        assert cfg.model.neck.in_channels == channels
        assert list(cfg.model.decode_head.in_channels) == [channels] * 4
    else:
        assert backbone.out_type == 'registers'
        assert cfg.model.head.in_channels == RELEASE[size_of(name)]['representation']


@pytest.mark.parametrize('name', DET_CONFIGS + SEG_CONFIGS)
def test_dense_configs_load_the_release_classifier(name, monkeypatch, tmp_path):
    init_cfg = load(name).model.backbone.init_cfg
    assert (init_cfg.type, init_cfg.prefix) == ('Pretrained', 'backbone.')
    assert init_cfg.checkpoint == RELEASE_URL.format(RELEASE[size_of(name)]['arch'])
    monkeypatch.setenv(f'MAMBAREG_{size_of(name).upper()}_CKPT', f'{tmp_path}/mine.pth')
    assert load_fresh(name).model.backbone.init_cfg.checkpoint == f'{tmp_path}/mine.pth'


@pytest.mark.parametrize('name', ['mask_rcnn_mambareg_s', 'upernet_mambareg_s', 'cls_mambareg_s'])
def test_registers_and_ssm_parameters_get_no_weight_decay(name):
    cfg = tiny(load(name))
    model = build_model(cfg)
    groups = {id(p): g for g in helpers.cpu_optim_wrapper(model, cfg).optimizer.param_groups
              for p in g['params']}
    decay = cfg.optim_wrapper.optimizer.weight_decay
    exempt = ('pos_embed', 'registers', 'register_pos_embed', 'A_log', 'D', 'dt_proj_bias')
    named = dict(model.backbone.named_parameters())
    assert {n.rsplit('.', 1)[-1] for n in named} >= set(exempt)
    for n, p in named.items():
        expected = 0 if n.rsplit('.', 1)[-1] in exempt or p.dim() == 1 else decay
        assert groups[id(p)]['weight_decay'] == expected, n
    if cfg.default_scope in ('mmdet', 'mmseg'):
        # layer decay reaches the layers: layer i has lr x 0.92 ** (num_layers - i)
        top = model.backbone.num_layers + 1
        for i in range(model.backbone.num_layers):
            p = named[f'layers.{i}.mixer.in_proj.weight']
            assert groups[id(p)]['lr'] == pytest.approx(
                0.92**(top - i - 1) * cfg.optim_wrapper.optimizer.lr)


@pytest.mark.parametrize('name', CLS_CONFIGS)
def test_cls_stage_recipe(name):
    """Per stage: epochs, lr (DeiT's lr x batch / 512 unless --unscale-lr), 5 warm-up epochs
    from 1e-6, cosine to the min lr 1e-5 stepped per epoch, weight decay, drop path, batch."""
    cfg = load(name)
    stage = STAGE[stage_of(name)]
    assert cfg.train_dataloader.batch_size == stage['gpu_batch']
    assert cfg.model.backbone.drop_path_rate == stage['drop_path']
    assert cfg.model.backbone.img_size == stage['size']
    assert cfg.optim_wrapper.optimizer.weight_decay == stage['wd']
    if 'lr_per_512' in stage:
        base = stage['lr_per_512'] * 8 * stage['gpu_batch'] / 512
        assert cfg.auto_scale_lr.base_batch_size == 8 * stage['gpu_batch']
    else:
        base = stage['lr']
        assert cfg.auto_scale_lr.enable is False
    epoch_length, epochs = 2, stage['epochs']
    lrs = helpers.lr_trace(cfg, epoch_length)
    assert len(lrs) == epochs * epoch_length

    def expected(epoch):
        if epoch < 5:
            return 1e-6 + epoch * (base - 1e-6) / 5
        return 1e-5 + (base - 1e-5) * 0.5 * (1 + math.cos(math.pi * (epoch - 5) / (epochs - 5)))

    for epoch in (0, 1, 4, 5, 6, epochs // 2, epochs - 1):
        assert lrs[epoch * epoch_length] == pytest.approx(expected(epoch), rel=1e-6), epoch
        assert lrs[epoch * epoch_length + 1] == lrs[epoch * epoch_length]


def _run_pipeline(pipeline, size=(300, 240)):
    from mmcv.transforms import Compose
    from mmengine.registry import init_default_scope
    init_default_scope('mmpretrain')
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    steps = Compose([t for t in pipeline if t['type'] != 'LoadImageFromFile'])
    return steps(dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2], gt_label=0))


@pytest.mark.parametrize('stage', STAGES)
def test_cls_stage_data(stage):
    """Stages 1-2: 3-Augment (one of grayscale / solarize / blur, colour jitter 0.3), no
    RandAugment, no erasing, no label smoothing, repeated augmentation; stage 3: RandAugment
    m9 / mstd 0.5, erasing 0.25, smoothing 0.1, no repeats, evaluation crop ratio 1.0."""
    cfg = load(f'cls_mambareg_s{stage}')
    size = STAGE[stage]['size']
    train = {t.type: t for t in cfg.train_dataloader.dataset.pipeline}
    out = _run_pipeline(cfg.train_dataloader.dataset.pipeline)
    assert tuple(out['inputs'].shape) == (3, size, size)
    out = _run_pipeline(cfg.val_dataloader.dataset.pipeline)
    assert tuple(out['inputs'].shape) == (3, size, size)
    test = {t.type: t for t in cfg.val_dataloader.dataset.pipeline}
    if stage == '_ft224':
        assert (train['RandAugment'].magnitude_level, train['RandAugment'].magnitude_std) == \
            (9, 0.5)
        assert train['RandomErasing'].erase_prob == 0.25
        assert cfg.model.head.loss.label_smooth_val == 0.1
        assert cfg.train_dataloader.sampler.type == 'DefaultSampler'
        assert test['ResizeEdge'].scale == 224  # crop ratio 1.0
    else:
        assert 'RandAugment' not in train and 'RandomErasing' not in train
        choices = [c[0]['type'] for c in train['RandomChoice'].transforms]
        assert choices == ['RandomGrayscale', 'Solarize', 'GaussianBlur']
        jitter = train['ColorJitter']
        assert (jitter.brightness, jitter.contrast, jitter.saturation) == (0.3, 0.3, 0.3)
        assert cfg.model.head.loss.type == 'CrossEntropyLoss'
        assert cfg.train_dataloader.sampler.type == 'RepeatAugSampler'
        assert test['ResizeEdge'].scale == int(size / 0.875)
    assert [(a.type, a.alpha) for a in cfg.model.train_cfg.augments] == [('Mixup', 0.8),
                                                                        ('CutMix', 1.0)]


def test_cls_stages_chain_their_checkpoints():
    assert load('cls_mambareg_s_mid224').model.backbone.init_cfg.checkpoint == \
        'work_dirs/cls_mambareg_s/epoch_300.pth'
    assert load('cls_mambareg_s_ft224').load_from == \
        'work_dirs/cls_mambareg_s_mid224/epoch_100.pth'


def test_stage_one_weights_load_into_stage_two_at_224(tmp_path):
    """The 8x8 position embedding of stage 1 (128x128) is resized to stage 2's 14x14 grid;
    every other backbone weight is loaded as saved."""
    torch.manual_seed(0)
    stage1 = build_model(tiny(load('cls_mambareg_s')))
    stage1.init_weights()
    checkpoint = tmp_path / 'epoch_300.pth'
    save_checkpoint(dict(meta=dict(epoch=300), state_dict=stage1.state_dict()), str(checkpoint))
    cfg = tiny(load('cls_mambareg_s_mid224'))
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(checkpoint),
                                       prefix='backbone.')
    stage2 = build_model(cfg)
    stage2.init_weights()
    source, target = stage1.backbone.state_dict(), stage2.backbone.state_dict()
    assert set(source) == set(target)
    assert source['pos_embed'].shape[1] == 8 * 8 and target['pos_embed'].shape[1] == 14 * 14
    grid = source['pos_embed'].reshape(1, 8, 8, -1).permute(0, 3, 1, 2)
    resized = torch.nn.functional.interpolate(grid, size=(14, 14), mode='bicubic',
                                              align_corners=False)
    torch.testing.assert_close(target['pos_embed'], resized.flatten(2).transpose(1, 2))
    for key in source:
        if key != 'pos_embed':
            assert torch.equal(source[key], target[key]), key


@pytest.mark.parametrize('name', DET_CONFIGS + SEG_CONFIGS + ['cls_mambareg_s',
                                                              'cls_mambareg_s_ft224'])
def test_one_training_step(name):
    torch.manual_seed(0)
    cfg = tiny(load(name))
    model = build_model(cfg)
    model.init_weights()
    model.train()
    params = dict(model.backbone.named_parameters())
    before = {n: p.detach().clone() for n, p in params.items()}
    log_vars = model.train_step(helpers.batch_for(cfg), helpers.cpu_optim_wrapper(model, cfg))
    assert torch.isfinite(log_vars['loss']) and log_vars['loss'] > 0
    for key in ('patch_embed.proj.weight', 'registers', 'layers.0.mixer.ssm.A_log',
                f'layers.{TINY_LAYERS - 1}.mixer.in_proj.weight'):
        assert not torch.equal(before[key], params[key]), key


@pytest.mark.parametrize('size', ['s', 'b'])
def test_classifier_parameter_count_matches_the_paper(size):
    model = build_model(load(f'cls_mambareg_{size}'))
    params = sum(p.numel() for p in model.parameters())
    assert abs(params - RELEASE[size]['params']) <= 0.03 * RELEASE[size]['params'], params
