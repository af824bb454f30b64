# ImageNet-1k classification with VMamba: the recipe of the VMamba release
# (https://github.com/MzeroMiko/VMamba, classification/config.py defaults, which are Swin's, and
# configs/vssm/vmambav2*_224.yaml): 300 epochs, AdamW lr 5e-4 x total batch / 512 (1e-3 at the
# release's 8 GPUs x 128 images), wd 0.05 (none on 1-D parameters and A_log), eps 1e-8, 20
# linear warm-up epochs from lr x 1e-3, then cosine to 1e-5, both updated every iteration,
# gradient norm clipped at 5.0, FP16, model EMA with decay 0.9999; data as in ./cls_imagenet.py
# (RandAugment m9 / mstd 0.5, Mixup 0.8, CutMix 1.0, random erasing 0.25, label smoothing
# 0.1), test: short side 256, centre crop 224.
# The classifier is the release's: the backbone's last-stage norm (norm3), global average
# pooling, one linear layer.
# The size configs (configs/cls_vmamba_{t,s,b}.py) set arch, drop path and the head width.
_base_ = ['./cls_imagenet.py']

model = dict(
    backbone=dict(
        type='mmmamba.VMamba',
        arch='tiny',
        out_indices=(3, ),
        drop_path_rate=0.2),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        in_channels=768,
        # the release's initialisation of its linear layers
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.)))

# 8 GPUs x 128 images = 1024, the release's batch: lr 1e-3 (mmpretrain's Swin schedule).
# With another total batch, pass `--auto-scale-lr` to tools/train.py (lr x batch / 1024).
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    clip_grad=dict(max_norm=5.0),
    # No weight decay on 1-D parameters (norm weights, biases, the SSM's D) nor on A_log.
    paramwise_cfg=dict(
        _delete_=True,
        norm_decay_mult=0.,
        bias_decay_mult=0.,
        flat_decay_mult=0.,
        custom_keys={'A_log': dict(decay_mult=0.)}))

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        end=20,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        eta_min=1e-5,
        by_epoch=True,
        begin=20,
        convert_to_iter_based=True),
]

# EMA of the weights after every iteration, decay 0.9999 (mmengine's momentum = 1 - decay);
# validation and test use the averaged weights.
custom_hooks = [
    dict(type='mmmamba.InputCheckHook'),
    dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL'),
]
