# Mask R-CNN + FPN, MambaOut-T backbone, COCO 1x (12 epochs), 4 GPUs x 4 images, FP16.
# Paper (arXiv 2405.07992, Table 3): 43M params, 262G MACs at 800x1280.
#   bash tools/dist_train.sh configs/mask_rcnn_mambaout_t.py 4
_base_ = ['./_base_/mask_rcnn_mambaout.py']
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
    neck=dict(in_channels=[96, 192, 384, 576]))
