# UperNet + auxiliary FCN head, ADE20K 512x512, 160k iterations: what every mmmamba backbone
# family shares. The family bases (configs/_base_/upernet_<family>.py) put their backbone in
# (`_delete_=True` over mmseg's ResNet), set the head widths and, where their recipe differs,
# the learning rate.
#
# The Swin recipe (mmseg's configs/swin/, followed by VMamba): ImageNet-1k initialisation,
# 160k iterations, AdamW lr 6e-5 wd 0.01, 1500 linear warm-up iterations then linear (poly 1)
# decay to 0, total batch 16 (4 GPUs x 4 images), FP16.
_base_ = [
    'mmseg::_base_/models/upernet_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/schedules/schedule_160k.py',
    'mmseg::_base_/default_runtime.py',
]

data_root = '{{$ADE_ROOT:data/ade/ADEChallengeData2016/}}'
crop_size = (512, 512)

model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    decode_head=dict(num_classes=150),
    # the auxiliary FCN head reads stage 3
    auxiliary_head=dict(in_index=2, num_classes=150))

# 4 GPUs x 4 images = 16
train_dataloader = dict(batch_size=4, dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=1, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader

# No weight decay on 1-D parameters (norm weights, biases), as timm does for the backbone.
optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0., bias_decay_mult=0., flat_decay_mult=0.))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=160000, by_epoch=False),
]

# the lr is for a total batch of 16; `tools/train.py --auto-scale-lr` rescales it.
auto_scale_lr = dict(enable=False, base_batch_size=16)

# Stop early with a clear message on bad data roots, missing images, a class-count mismatch
# or a load_from checkpoint of another model (see mmmamba/engine/hooks/input_check_hook.py).
custom_hooks = [dict(type='mmmamba.InputCheckHook')]
