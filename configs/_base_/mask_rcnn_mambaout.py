# Mask R-CNN + FPN with a MambaOut backbone, COCO instance segmentation, 1x schedule.
#
# Recipe of the MambaOut paper (Yu & Wang, https://arxiv.org/abs/2405.07992, Sec. 4.2):
# ImageNet-1k initialisation, 12 epochs, shorter side 800 / longer side <= 1333 (the stock
# mmdet pipeline), AdamW lr 1e-4, total batch 16 (4 GPUs x 4 images), FP16 — all of it in
# ./mask_rcnn_coco_1x.py, shared with the other backbone families.
# The size configs (configs/mask_rcnn_mambaout_{t,s,b}.py) set arch, drop path, FPN widths
# and the pretrained checkpoint.
_base_ = ['./mask_rcnn_coco_1x.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmmamba.MambaOut',
        arch='tiny',
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.3),
    neck=dict(in_channels=[96, 192, 384, 576]))
