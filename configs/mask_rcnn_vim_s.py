# Mask R-CNN + simple feature pyramid + FPN, Vim-S backbone, COCO 1x (12 epochs),
# 4 GPUs x 4 images, FP16, layer-wise lr decay 0.92. Our own recipe (see
# ./_base_/mask_rcnn_vim.py); no published result to compare with.
#   bash tools/dist_train.sh configs/mask_rcnn_vim_s.py 4
_base_ = ['./_base_/mask_rcnn_vim.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

# ImageNet-1k weights: by default the release's Vim-S classifier (vim_s_midclstok_80p5acc.pth,
# 80.5% top-1, huggingface.co/hustvl/Vim-small-midclstok); VIM_S_CKPT may name any other file
# the backbone loads (an mmmamba classifier checkpoint from configs/cls_vim_s.py, say).
pretrained = '{{$VIM_S_CKPT:https://huggingface.co/hustvl/Vim-small-midclstok/resolve/main/vim_s_midclstok_80p5acc.pth}}'  # noqa: E501

model = dict(
    backbone=dict(
        arch='small',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=[
        dict(type='mmmamba.SimpleFeaturePyramid', in_channels=384, out_channels=256),
        dict(type='FPN', in_channels=[256, 256, 256, 256], out_channels=256, num_outs=5),
    ])
