# ImageNet-1k classification with Mamba-Reg: stage 1 of the Mamba-Reg release's three-stage
# recipe (https://github.com/wangf3014/Mamba-Reg README, "Training"; its main.py is DeiT's).
# The stage configs (configs/cls_mambareg_{s,b}{,_mid224,_ft224}.py) set size and stage:
#   1. pre-train at 128x128: 300 epochs, lr 5e-4 per 512 images, wd 0.05, drop path 0.1,
#      3-Augment (DeiT III), no label smoothing, no random erasing, repeated augmentation;
#   2. intermediate training at 224x224 from stage 1: 100 epochs, lr 2e-4 per 512 images,
#      drop path 0.4;
#   3. fine-tune at 224x224 from stage 2: 20 epochs, lr 1e-5 (not scaled by batch), wd 0.1,
#      batch 8 x 64, RandAugment rand-m9-mstd0.5-inc1, random erasing 0.25, label smoothing
#      0.1, no repeated augmentation, drop path 0.4.
# What stays from ./cls_vim.py (the Vim release, also DeiT's main.py): AdamW, 5 linear warm-up
# epochs from 1e-6, cosine to 1e-5 stepped per epoch, Mixup 0.8 / CutMix 1.0, EMA 0.99996,
# fp32, no weight decay on 1-D parameters, embeddings, A_log, D and dt_proj_bias — and none on
# the registers either (the release's no_weight_decay list names them).
# The representation is the release's: the registers after the final norm, each reduced to
# C / register_reduce channels, concatenated and RMS-normed, into one linear layer.
_base_ = ['./cls_vim.py']

img_size = 128
model = dict(
    backbone=dict(
        type='mmmamba.MambaReg',
        arch='small',
        img_size=img_size,
        out_type='registers',
        drop_path_rate=0.1),
    # no label smoothing in stages 1 and 2 (--smoothing 0.0): plain cross-entropy on the
    # mixed (soft) targets
    head=dict(in_channels=12 * 384 // 2, loss=dict(_delete_=True, type='CrossEntropyLoss',
                                                  use_soft=True)))

# 3-Augment (DeiT III, the release's --ThreeAugment): random resized crop, flip, one of
# grayscale / solarize / Gaussian blur, colour jitter 0.3; no RandAugment, no erasing.
three_augment_choices = [
    [dict(type='RandomGrayscale', prob=1.0, keep_channels=True)],
    [dict(type='Solarize', thr=128, prob=1.0)],
    # DeiT's blur radius: uniform in [0.1, 2]
    [dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_level=10, total_level=10,
          magnitude_std='inf', prob=1.0)],
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomChoice', transforms=three_augment_choices),
    dict(type='ColorJitter', brightness=0.3, contrast=0.3, saturation=0.3),
    dict(type='PackInputs'),
]
# DeiT's evaluation crop ratio 0.875: short side img_size / 0.875, centre crop img_size
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=int(img_size / 0.875), edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='PackInputs'),
]
# 8 GPUs x 128 images at lr 5e-4 per 512 (DeiT's main.py scales lr x batch / 512)
train_dataloader = dict(batch_size=128, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'registers': dict(decay_mult=0.)}))
auto_scale_lr = dict(base_batch_size=1024)
