# DINO pre-training of MambaOut-T on ImageNet-1k, 100 epochs, 16 GPUs x 64 images, FP16 (the
# DINO paper's ViT-S recipe, see ./_base_/dino_imagenet.py). The global representation is
# MambaOut's own: the last stage average-pooled, then its LayerNorm (norm3), 576 wide.
#   bash tools/dist_train.sh configs/dino_mambaout_t.py 16
# Then: MAMBAOUT_T_CKPT=work_dirs/dino_mambaout_t/epoch_100.pth for configs/linprobe_mambaout_t.py,
# configs/mask_rcnn_mambaout_t.py or configs/upernet_mambaout_t.py.
_base_ = ['./_base_/dino_imagenet.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='mmmamba.MambaOut',
        arch='tiny',
        out_indices=(3, ),
        gap_before_final_norm=True,
        drop_path_rate=0.1),
    neck=dict(in_channels=576))
