# Mask R-CNN + simple feature pyramid + FPN, Mamba-Reg-S backbone, COCO 1x (12 epochs),
# 4 GPUs x 4 images, FP16, layer-wise lr decay 0.92: our Vim detection recipe
# (./_base_/mask_rcnn_vim.py) with Mamba-Reg's backbone; no published result to compare with.
#   bash tools/dist_train.sh configs/mask_rcnn_mambareg_s.py 4
_base_ = ['./_base_/mask_rcnn_vim.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

# ImageNet-1k weights: by default the release's Mamba-Reg-S classifier
# (mambar_small_patch16_224.pth, huggingface.co/Wangf3014/Mamba-Reg); MAMBAREG_S_CKPT may name
# any other file the backbone loads (an mmmamba classifier or DINO checkpoint, say).
pretrained = '{{$MAMBAREG_S_CKPT:https://huggingface.co/Wangf3014/Mamba-Reg/resolve/main/mambar_small_patch16_224.pth}}'  # noqa: E501

model = dict(
    backbone=dict(
        type='mmmamba.MambaReg',
        arch='small',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=[
        dict(type='mmmamba.SimpleFeaturePyramid', in_channels=384, out_channels=256),
        dict(type='FPN', in_channels=[256, 256, 256, 256], out_channels=256, num_outs=5),
    ])
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'registers': dict(decay_mult=0.)}))
