# UperNet + auxiliary FCN head, MambaOut-B backbone, ADE20K 512x512, 160k iterations,
# 4 GPUs x 4 images, FP16.
# Paper (arXiv 2405.07992, Table 4): 112M params, 1178G MACs at 512x2048.
#   bash tools/dist_train.sh configs/upernet_mambaout_b.py 4
_base_ = ['./_base_/upernet_mambaout.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

# ImageNet-1k weights: the official release by default; MAMBAOUT_B_CKPT may name any
# other file the backbone loads (an mmmamba classifier checkpoint from
# configs/cls_mambaout_b.py, a timm or an official MambaOut file).
pretrained = '{{$MAMBAOUT_B_CKPT:https://github.com/yuweihao/MambaOut/releases/download/model/mambaout_base.pth}}'  # noqa: E501

model = dict(
    backbone=dict(
        arch='base',
        drop_path_rate=0.6,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    decode_head=dict(in_channels=[128, 256, 512, 768]),
    auxiliary_head=dict(in_channels=512))
