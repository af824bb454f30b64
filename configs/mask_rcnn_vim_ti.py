# Mask R-CNN + simple feature pyramid + FPN, Vim-Ti backbone, COCO 1x (12 epochs),
# 4 GPUs x 4 images, FP16, layer-wise lr decay 0.92. Our own recipe (see
# ./_base_/mask_rcnn_vim.py); no published result to compare with.
#   bash tools/dist_train.sh configs/mask_rcnn_vim_ti.py 4
_base_ = ['./_base_/mask_rcnn_vim.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

# ImageNet-1k weights: by default the release's Vim-Ti classifier (vim_t_midclstok_76p1acc.pth,
# 76.1% top-1, huggingface.co/hustvl/Vim-tiny-midclstok); VIM_TI_CKPT may name any other file
# the backbone loads (an mmmamba classifier checkpoint from configs/cls_vim_ti.py, say).
pretrained = '{{$VIM_TI_CKPT:https://huggingface.co/hustvl/Vim-tiny-midclstok/resolve/main/vim_t_midclstok_76p1acc.pth}}'  # noqa: E501

model = dict(
    backbone=dict(
        arch='tiny',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=[
        dict(type='mmmamba.SimpleFeaturePyramid', in_channels=192, out_channels=256),
        dict(type='FPN', in_channels=[256, 256, 256, 256], out_channels=256, num_outs=5),
    ])
