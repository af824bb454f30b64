# DINO self-supervised pre-training on ImageNet-1k (train split, no labels used): the ViT-S/16
# recipe of the DINO paper (Caron et al., arXiv 2104.14294, Sec. 4 / App. and the defaults of
# its main_dino.py), shared by configs/dino_{mambaout_t,vim_s,mambareg_s}.py, which put in the
# backbone and the width of its global representation.
#
# - 100 epochs, AdamW, lr 5e-4 x total batch / 256 (2e-3 at 16 GPUs x 64 images = 1024),
#   linear warm-up over 10 epochs, then cosine to 1e-6; weight decay 0.04 -> 0.4 on a cosine
#   (none on biases and norms); both per iteration; FP16 (AmpOptimWrapper); gradients clipped
#   at norm 3.0 (DINO clips each parameter tensor separately, mmengine clips the global norm).
# - Multi-crop: 2 global crops 224^2 (scale 0.4-1), 8 local crops 96^2 (scale 0.05-0.4),
#   bicubic, flip, colour jitter 0.4/0.4/0.2/0.1 (p 0.8), grayscale (p 0.2), Gaussian blur
#   (p 1.0 / 0.1 / 0.5), solarize (p 0.2, second global crop only) — BYOL's augmentations.
# - Projection head: 3-layer MLP 2048 wide, bottleneck 256, weight-normalised last layer with
#   its gain fixed to 1, 65 536 prototypes. Student temperature 0.1, teacher 0.04 -> 0.07
#   (linear over 30 epochs, mmmamba.DINOTeacherTempWarmupHook), centre momentum 0.9;
#   teacher momentum 0.996 -> 1 (cosine, per iteration); the teacher sees only the global crops;
#   the student's prototypes (the last layer) get no update in the first epoch.
# The teacher's backbone is saved under `backbone.` (see mmmamba/models/selfsup/dino.py), so a
# checkpoint of these configs initialises the det/seg/linear-probe configs with their
# prefix='backbone.' as it is.
_base_ = ['mmpretrain::_base_/default_runtime.py']

data_root = '{{$IMAGENET_ROOT:data/imagenet/}}'

num_prototypes = 65536
model = dict(
    type='mmmamba.DINO',
    base_momentum=0.996,
    num_global_crops=2,
    freeze_last_layer_epochs=1,
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    # backbone: set by each size config
    neck=dict(
        type='mmmamba.DINONeck',
        in_channels=None,  # the width of the backbone's global representation
        hidden_channels=2048,
        bottleneck_channels=256,
        out_channels=num_prototypes,
        norm_last_layer=True),
    head=dict(
        type='mmmamba.DINOHead',
        out_channels=num_prototypes,
        student_temp=0.1,
        teacher_temp=0.04,
        center_momentum=0.9))

global_crop_size = 224
local_crop_size = 96
num_local_crops = 8
colour_augs = [
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomApply',
        transforms=[
            dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1)
        ],
        prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
]
global_view_1 = [
    dict(type='RandomResizedCrop', scale=global_crop_size, crop_ratio_range=(0.4, 1.0),
         interpolation='bicubic', backend='pillow'),
    *colour_augs,
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf', prob=1.0),
]
global_view_2 = [
    dict(type='RandomResizedCrop', scale=global_crop_size, crop_ratio_range=(0.4, 1.0),
         interpolation='bicubic', backend='pillow'),
    *colour_augs,
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf', prob=0.1),
    dict(type='Solarize', thr=128, prob=0.2),
]
local_view = [
    dict(type='RandomResizedCrop', scale=local_crop_size, crop_ratio_range=(0.05, 0.4),
         interpolation='bicubic', backend='pillow'),
    *colour_augs,
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf', prob=0.5),
]
# the global crops first: DINO's teacher takes the first `num_global_crops` views
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=[1, 1, num_local_crops],
         transforms=[global_view_1, global_view_2, local_view]),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    drop_last=True,
    dataset=dict(type='ImageNet', data_root=data_root, split='train', pipeline=train_pipeline))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None

# 16 GPUs x 64 images = 1024: lr 5e-4 x 1024 / 256. With another total batch pass
# `--auto-scale-lr` to tools/train.py (lr x batch / 1024, the same rule).
base_lr = 5e-4 * 1024 / 256
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=base_lr, betas=(0.9, 0.999), weight_decay=0.04),
    clip_grad=dict(max_norm=3.0),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0., flat_decay_mult=0.))
auto_scale_lr = dict(base_batch_size=1024)

max_epochs = 100
warmup_epochs = 10
param_scheduler = [
    # from (almost) 0 to lr: mmengine's LinearLR needs a start factor > 0
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=warmup_epochs,
         end=max_epochs, convert_to_iter_based=True),
    # weight decay 0.04 -> 0.4: ten times each group's own value (no-decay groups stay at 0)
    dict(type='CosineAnnealingParamScheduler', param_name='weight_decay', eta_min_ratio=10.,
         by_epoch=True, begin=0, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)

custom_hooks = [
    dict(type='mmmamba.DINOTeacherTempWarmupHook', warmup_teacher_temp=0.04,
         teacher_temp=0.07, warmup_epochs=30),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
