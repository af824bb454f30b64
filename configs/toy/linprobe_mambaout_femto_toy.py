# Toy variant of configs/linprobe_mambaout_t.py: a linear probe (BatchNorm + linear on the frozen
# backbone's pooled features) of the toy DINO teacher (configs/toy/dino_mambaout_femto_toy.py)
# on the toy ImageNet set (4 classes, 50 train / 10 val images of 64^2 per class; chance 25%).
# It inherits the real config and overrides only data, crop sizes, width and schedule.
#   TOY_DINO_CKPT=work_dirs/dino_toy/epoch_20.pth \
#     python tools/train.py configs/toy/linprobe_mambaout_femto_toy.py
_base_ = '../linprobe_mambaout_t.py'

data_root = '{{$TOY_IMAGENET_ROOT:data/toy/imagenet/}}'
classes = ('circle', 'square', 'star', 'triangle')
pretrained = '{{$TOY_DINO_CKPT:work_dirs/dino_toy/epoch_20.pth}}'

model = dict(
    data_preprocessor=dict(num_classes=len(classes)),
    backbone=dict(
        arch='femto',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(input_features=288),
    head=dict(in_channels=288, num_classes=len(classes), topk=(1, )))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

# The probe's lr rule (1e-3 x batch / 256) would give 6e-5 at batch 16; for its 20 epochs of 13
# iterations the toy uses SGD lr 0.1 instead (no weight decay, momentum 0.9 as in the recipe).
max_epochs = 20
optim_wrapper = dict(optimizer=dict(lr=0.1))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=0., by_epoch=True, begin=0,
         end=max_epochs),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
default_hooks = dict(logger=dict(interval=13), checkpoint=dict(interval=20, max_keep_ckpts=1))
