# Mask R-CNN with a Vim backbone, a simple feature pyramid and FPN, COCO instance segmentation,
# 1x schedule. This is our own recipe: the Vim release (https://github.com/hustvl/Vim, det/)
# trains Cascade Mask R-CNN in detectron2's ViTDet setup (100 epochs of large-scale jitter at
# 1024²), which mmdet 3.3 does not ship.
#
# Where each setting comes from:
# - ./mask_rcnn_coco_1x.py (the Swin recipe all our families share): 12 epochs, shorter side
#   800 / longer side <= 1333, AdamW lr 1e-4 wd 0.05, total batch 16 (4 GPUs x 4 images), FP16.
# - The Vim release's detection model (det/configs/common/models/mask_rcnn_vimdet.py): the last
#   layer's stride-16 map, ViTDet's simple feature pyramid (strides 4/8/16/32, LayerNorm,
#   256 channels), drop path 0.1, no weight decay on the position embedding.
# - Ours: mmdet's FPN after the pyramid (it adds the top-down path and the stride-64 level
#   the RPN anchors of mmdet's Mask R-CNN expect); layer-wise lr decay 0.92 over the 24 layers
#   (the rate of the release's UperNet configs; its detection configs name 0.7 but match
#   parameter names Vim does not have, so no decay reached its layers); no weight decay on the
#   class token, the SSMs' A_log and D (mamba-ssm's `_no_weight_decay`), dt_proj_bias (a bias,
#   1-D per direction in the release), norms and biases.
# The size configs (configs/mask_rcnn_vim_{ti,s}.py) set arch, widths and the checkpoint.
_base_ = ['./mask_rcnn_coco_1x.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmmamba.Vim',
        arch='tiny',
        out_indices=(-1, ),
        out_type='featmap',
        drop_path_rate=0.1),
    neck=[
        dict(type='mmmamba.SimpleFeaturePyramid', in_channels=192, out_channels=256),
        dict(type='FPN', in_channels=[256, 256, 256, 256], out_channels=256, num_outs=5),
    ])

optim_wrapper = dict(
    constructor='mmmamba.LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.92,
        custom_keys={
            'pos_embed': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
            'dt_proj_bias': dict(decay_mult=0.),
        }))
