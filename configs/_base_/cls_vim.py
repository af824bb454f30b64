# ImageNet-1k classification with Vim: the recipe of the Vim release (https://github.com/hustvl/
# Vim, vim/main.py defaults, which are DeiT's, and vim/scripts/pt-vim-{t,s}.sh): 300 epochs,
# AdamW lr 5e-4 x total batch / 512 (the scripts: Vim-Ti 8 GPUs x 128 images at lr 5e-4, i.e.
# 1e-3; Vim-S 8 GPUs x 64 images at lr 1e-3 per 512, i.e. 1e-3), eps 1e-8, wd 0.05, 5 linear
# warm-up epochs from 1e-6, cosine decay to 1e-5, both stepped once per epoch (timm's
# scheduler as DeiT drives it), no gradient clipping, fp32 (the scripts pass --no_amp),
# repeated augmentation (3 repeats), model EMA with decay 0.99996, the class token after the
# final norm into one linear layer; data as in ./cls_imagenet.py (RandAugment m9 / mstd 0.5,
# Mixup 0.8, CutMix 1.0, random erasing 0.25, label smoothing 0.1, bicubic), test: short side
# 256, centre crop 224 (DeiT's crop ratio 0.875).
# Weight decay: none on 1-D parameters, the position embeddings and the class token (the
# release's: timm's rule plus the model's no_weight_decay list) nor on dt_proj_bias (a bias,
# 1-D per direction in the release); none on A_log either, which the release's rule decays
# (2-D) — we follow mamba-ssm's `_no_weight_decay` marking of A_log and D there.
# The size configs (configs/cls_vim_{ti,s}.py) set arch, drop path, head width and batch.
_base_ = ['./cls_imagenet.py']

model = dict(
    backbone=dict(
        type='mmmamba.Vim',
        arch='tiny',
        out_indices=(-1, ),
        out_type='cls_token',
        drop_path_rate=0.1),
    neck=None,
    head=dict(
        type='LinearClsHead',
        in_channels=192,
        # the release's initialisation of its linear layers
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.)))

# 8 GPUs x 128 images = 1024, lr 5e-4 x 1024 / 512. With another total batch, pass
# `--auto-scale-lr` to tools/train.py (lr x batch / 1024, the release's linear rule).
train_dataloader = dict(batch_size=128, sampler=dict(_delete_=True, type='RepeatAugSampler'))
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.,
        bias_decay_mult=0.,
        flat_decay_mult=0.,
        custom_keys={
            'pos_embed': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
            'dt_proj_bias': dict(decay_mult=0.),
            'A_log': dict(decay_mult=0.),
        }))
auto_scale_lr = dict(base_batch_size=1024)

param_scheduler = [
    # timm's warm-up: 1e-6 (= 1e-3 x 1e-3) at epoch 0, rising linearly to lr at epoch 5
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=6),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5, end=300),
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)

# EMA of the weights after every iteration, decay 0.99996 (mmengine's momentum = 1 - decay);
# validation and test use the averaged weights.
custom_hooks = [
    dict(type='mmmamba.InputCheckHook'),
    dict(type='EMAHook', momentum=4e-5, priority='ABOVE_NORMAL'),
]
