# Linear probe of Vim-S on ImageNet-1k (the DINO protocol, see ./_base_/linprobe_imagenet.py),
# on the middle class token after the final norm, 384 wide.
# Checkpoint: VIM_S_CKPT, by default the DINO pre-training of configs/dino_vim_s.py; the
# release's supervised Vim-S (vim_s_midclstok_80p5acc.pth) or an mmmamba classifier works alike.
#   VIM_S_CKPT=work_dirs/dino_vim_s/epoch_100.pth bash tools/dist_train.sh configs/linprobe_vim_s.py 8
_base_ = ['./_base_/linprobe_imagenet.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

pretrained = '{{$VIM_S_CKPT:work_dirs/dino_vim_s/epoch_100.pth}}'
model = dict(
    backbone=dict(
        type='mmmamba.Vim',
        arch='small',
        out_indices=(-1, ),
        out_type='cls_token',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(type='ClsBatchNormNeck', input_features=384),
    head=dict(in_channels=384))
