# Toy variant of configs/dino_mambaout_t.py for a CPU run on the generated toy ImageNet set
# (python tools/dataset_converters/make_toy_data.py --kinds imagenet: 4 classes x 50 train
# images of 64^2, labels unused). It inherits the real config and overrides only data, crop
# sizes, widths and schedule: MambaOut-femto (the backbone of the toy Mask R-CNN / UperNet
# configs, so its checkpoint hands off to them), 2 global crops 64^2 + 4 local crops 32^2, a
# narrow projection head (256 hidden, bottleneck 64, 1024 prototypes), 20 epochs of 12
# iterations (batch 16), fp32.
_base_ = '../dino_mambaout_t.py'

data_root = '{{$TOY_IMAGENET_ROOT:data/toy/imagenet/}}'
classes = ('circle', 'square', 'star', 'triangle')

num_prototypes = 1024
model = dict(
    backbone=dict(arch='femto', drop_path_rate=0.0),
    neck=dict(in_channels=288, hidden_channels=256, bottleneck_channels=64,
              out_channels=num_prototypes),
    head=dict(out_channels=num_prototypes))

# the recipe's flip / colour jitter / grayscale (a config cannot unpack a base variable)
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
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.4, 1.0),
         interpolation='bicubic', backend='pillow'),
    *colour_augs,
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf', prob=1.0),
]
global_view_2 = [
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.4, 1.0),
         interpolation='bicubic', backend='pillow'),
    *colour_augs,
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf', prob=0.1),
    dict(type='Solarize', thr=128, prob=0.2),
]
local_view = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.05, 0.4),
         interpolation='bicubic', backend='pillow'),
    *colour_augs,
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf', prob=0.5),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=[1, 1, 4],
         transforms=[global_view_1, global_view_2, local_view]),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=train_pipeline))

# The recipe's lr rule at the toy batch, 5e-4 x 16 / 256; 20 epochs with the recipe's
# proportions (warm-up 2 epochs, teacher temperature warm-up 6). A larger lr (1e-3) collapsed
# the outputs to uniform within two epochs (loss flat at log 1024). fp32 on CPU (AMP needs CUDA).
max_epochs = 20
optim_wrapper = dict(type='OptimWrapper', _delete_=True,
                     optimizer=dict(type='AdamW', lr=5e-4 * 16 / 256, weight_decay=0.04),
                     clip_grad=dict(max_norm=3.0),
                     paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0.,
                                        flat_decay_mult=0.))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-9, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=2, end=max_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingParamScheduler', param_name='weight_decay', eta_min_ratio=10.,
         by_epoch=True, begin=0, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
custom_hooks = [
    dict(type='mmmamba.DINOTeacherTempWarmupHook', warmup_teacher_temp=0.04,
         teacher_temp=0.07, warmup_epochs=6),
]
default_hooks = dict(
    logger=dict(interval=4),
    checkpoint=dict(interval=5, max_keep_ckpts=2))
