# Stage 2 of the Mamba-Reg release's recipe (see ./cls_mambareg.py): intermediate training at
# 224x224 from the stage-1 checkpoint, 100 epochs, lr 2e-4 per 512 images, drop path 0.4,
# data as stage 1 (3-Augment) at 224. The size configs set the checkpoint; the stage-1 8x8
# position embedding is resized to 14x14 when it loads.
_base_ = ['./cls_mambareg.py']

img_size = 224
model = dict(backbone=dict(img_size=img_size, drop_path_rate=0.4))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=img_size, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandomChoice', transforms={{_base_.three_augment_choices}}),
    dict(type='ColorJitter', brightness=0.3, contrast=0.3, saturation=0.3),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

# 8 GPUs x 128 images at lr 2e-4 per 512
optim_wrapper = dict(optimizer=dict(lr=4e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6 / 4e-4, by_epoch=True, begin=0, end=6),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=5, end=100),
]
train_cfg = dict(max_epochs=100)
