# UperNet + auxiliary FCN head, Mamba-Reg-S backbone, ADE20K 512x512, 160k iterations,
# 4 GPUs x 4 images, FP16, layer-wise lr decay 0.92: the Vim UperNet recipe
# (./_base_/upernet_vim.py) with Mamba-Reg's backbone; the registers, like Vim's class token,
# are dropped from the dense outputs and get no weight decay.
#   bash tools/dist_train.sh configs/upernet_mambareg_s.py 4
_base_ = ['./_base_/upernet_vim.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

# ImageNet-1k weights: by default the release's Mamba-Reg-S classifier
# (mambar_small_patch16_224.pth, huggingface.co/Wangf3014/Mamba-Reg); MAMBAREG_S_CKPT may
# name any other file the backbone loads (an mmmamba classifier or DINO checkpoint, say).
pretrained = '{{$MAMBAREG_S_CKPT:https://huggingface.co/Wangf3014/Mamba-Reg/resolve/main/mambar_small_patch16_224.pth}}'  # noqa: E501

model = dict(
    backbone=dict(
        type='mmmamba.MambaReg',
        arch='small',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(in_channels=384, out_channels=384),
    decode_head=dict(in_channels=[384, 384, 384, 384], channels=384),
    auxiliary_head=dict(in_channels=384))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'registers': dict(decay_mult=0.)}))
