# Toy variant of configs/mask_rcnn_vim_ti.py for a CPU demo on the generated toy COCO set
# (tools/dataset_converters/make_toy_data.py). It inherits the real config and overrides only
# data, image size, schedule and model width; it trains from scratch in fp32, with the real
# config's simple feature pyramid + FPN and layer-wise lr decay.
_base_ = '../mask_rcnn_vim_ti.py'

data_root = '{{$TOY_COCO_ROOT:data/toy/coco/}}'
metainfo = dict(
    classes=('circle', 'square', 'triangle'), palette=[(220, 20, 60), (0, 170, 0), (30, 90, 230)])
image_size = (128, 128)

# A small Vim: the release's patch embedding, middle class token and bidirectional layers,
# narrower (64 channels) and shallower (6 layers), with 8 states per channel; `_delete_`
# because a dict replaces the base's arch name.
embed_dims = 64
backbone_arch = dict(_delete_=True, embed_dims=embed_dims, num_layers=6, d_state=8)

# Narrow pyramid, neck and heads (64 channels instead of 256), a 2-conv mask head and fewer
# RoIs: the heads cost ~10x less on a CPU.
width = 64
model = dict(
    # from scratch: the release's initialisation instead of the checkpoint
    backbone=dict(
        arch=backbone_arch,
        img_size=image_size,
        drop_path_rate=0.0,
        init_cfg=dict(_delete_=True, type='TruncNormal', layer='Linear', std=0.02, bias=0.)),
    neck=[
        dict(type='mmmamba.SimpleFeaturePyramid', in_channels=embed_dims, out_channels=width),
        dict(type='FPN', in_channels=[width] * 4, out_channels=width, num_outs=5),
    ],
    rpn_head=dict(in_channels=width, feat_channels=width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=dict(in_channels=width, fc_out_channels=256, num_classes=3),
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(num_convs=2, in_channels=width, conv_out_channels=width, num_classes=3)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=2,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min_ratio=0.05),
]
# fp32 on CPU (AmpOptimWrapper needs CUDA); from scratch, so a higher lr than the 1e-4 fine-tune.
# Layer decay and parameter-wise settings as in the real config.
optim_wrapper = dict(
    type='OptimWrapper',
    _delete_=True,
    constructor='mmmamba.LayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    paramwise_cfg=dict(
        layer_decay_rate=0.92,
        norm_decay_mult=0., bias_decay_mult=0., flat_decay_mult=0.,
        custom_keys={
            'pos_embed': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
            'dt_proj_bias': dict(decay_mult=0.),
        }))
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=4, max_keep_ckpts=2))
# A progress bar while evaluating, besides the logger's lines.
custom_hooks = [dict(type='mmmamba.InputCheckHook'), dict(type='mmmamba.EvalProgressBarHook')]
# Early in training a process may see no positive RoI, leaving the mask head without gradients;
# DDP must then not wait for them (a gloo run aborted on mismatched all-reduces without this).
find_unused_parameters = True
