# UperNet + auxiliary FCN head, Vim-S backbone, ADE20K 512x512, 160k iterations,
# 4 GPUs x 4 images, FP16, layer-wise lr decay 0.92 (see ./_base_/upernet_vim.py).
# Paper (Vim, UperNet on ADE20K val): Vim-S 44.9 mIoU.
#   bash tools/dist_train.sh configs/upernet_vim_s.py 4
_base_ = ['./_base_/upernet_vim.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

# ImageNet-1k weights: by default the release's Vim-S classifier (vim_s_midclstok_80p5acc.pth,
# 80.5% top-1, huggingface.co/hustvl/Vim-small-midclstok); VIM_S_CKPT may name any other file
# the backbone loads (an mmmamba classifier checkpoint from configs/cls_vim_s.py, say).
pretrained = '{{$VIM_S_CKPT:https://huggingface.co/hustvl/Vim-small-midclstok/resolve/main/vim_s_midclstok_80p5acc.pth}}'  # noqa: E501

model = dict(
    backbone=dict(
        arch='small',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(in_channels=384, out_channels=384),
    decode_head=dict(in_channels=[384, 384, 384, 384], channels=384),
    auxiliary_head=dict(in_channels=384))
