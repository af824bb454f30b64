# Stage 3 of the Mamba-Reg release's recipe (see ./cls_mambareg.py): fine-tune at 224x224 from
# the stage-2 checkpoint, 20 epochs, lr 1e-5 (the release's --unscale-lr: not scaled by batch;
# auto_scale_lr stays off, and `--auto-scale-lr` would scale it against 512 images), wd 0.1,
# total batch 512 (8 GPUs x 64 images), drop path 0.4, RandAugment rand-m9-mstd0.5-inc1, random
# erasing 0.25, label smoothing 0.1, no repeated augmentation. DeiT's scheduler with lr = min
# lr = 1e-5 holds 1e-5 after the 5 warm-up epochs from 1e-6.
_base_ = ['./cls_mambareg.py']

img_size = 224
bgr_mean = [103.53, 116.28, 123.675]
bgr_std = [57.375, 57.12, 58.395]
model = dict(
    backbone=dict(img_size=img_size, drop_path_rate=0.4),
    head=dict(loss=dict(_delete_=True, type='LabelSmoothLoss', label_smooth_val=0.1,
                        mode='original')))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
         magnitude_level=9, magnitude_std=0.5,
         hparams=dict(pad_val=[round(x) for x in bgr_mean], interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02,
         max_area_ratio=1 / 3, fill_color=bgr_mean, fill_std=bgr_std),
    dict(type='PackInputs'),
]
# the release evaluates with --eval-crop-ratio 1.0: resize the short side to 224, centre crop
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=img_size, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64,
    sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True),
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=1e-5, weight_decay=0.1))
auto_scale_lr = dict(_delete_=True, enable=False, base_batch_size=512)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=6),
]
train_cfg = dict(max_epochs=20)
