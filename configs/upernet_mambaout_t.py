# UperNet + auxiliary FCN head, MambaOut-T backbone, ADE20K 512x512, 160k iterations,
# 4 GPUs x 4 images, FP16.
# Paper (arXiv 2405.07992, Table 4): 54M params, 938G MACs at 512x2048.
#   bash tools/dist_train.sh configs/upernet_mambaout_t.py 4
_base_ = ['./_base_/upernet_mambaout.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

# ImageNet-1k weights: the official release by default; MAMBAOUT_T_CKPT may name any
# other file the backbone loads (an mmmamba classifier checkpoint from
# configs/cls_mambaout_t.py, a timm or an official MambaOut file).
pretrained = '{{$MAMBAOUT_T_CKPT:https://github.com/yuweihao/MambaOut/releases/download/model/mambaout_tiny.pth}}'  # noqa: E501

model = dict(
    backbone=dict(
        arch='tiny',
        drop_path_rate=0.3,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    decode_head=dict(in_channels=[96, 192, 384, 576]),
    auxiliary_head=dict(in_channels=384))
