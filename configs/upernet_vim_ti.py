# UperNet + auxiliary FCN head, Vim-Ti backbone, ADE20K 512x512, 160k iterations,
# 4 GPUs x 4 images, FP16, layer-wise lr decay 0.92 (see ./_base_/upernet_vim.py).
# Paper (Vim, UperNet on ADE20K val): Vim-Ti 41.0 mIoU.
#   bash tools/dist_train.sh configs/upernet_vim_ti.py 4
_base_ = ['./_base_/upernet_vim.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

# ImageNet-1k weights: by default the release's Vim-Ti classifier (vim_t_midclstok_76p1acc.pth,
# 76.1% top-1, huggingface.co/hustvl/Vim-tiny-midclstok); VIM_TI_CKPT may name any other file
# the backbone loads (an mmmamba classifier checkpoint from configs/cls_vim_ti.py, say).
pretrained = '{{$VIM_TI_CKPT:https://huggingface.co/hustvl/Vim-tiny-midclstok/resolve/main/vim_t_midclstok_76p1acc.pth}}'  # noqa: E501

model = dict(
    backbone=dict(
        arch='tiny',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(in_channels=192, out_channels=192),
    decode_head=dict(in_channels=[192, 192, 192, 192], channels=192),
    auxiliary_head=dict(in_channels=192))
