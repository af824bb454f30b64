# MambaOut-Femto on ImageNet-1k, 224x224, 300 epochs, total batch 4096 (32 GPUs x 128 images).
# Paper (arXiv 2405.07992, Table 1): 7.3M params, 1.2G MACs, 78.9% top-1.
# Drop path 0.025: scripts/train_mambaout_femto.sh of the official repository.
#   bash tools/dist_train.sh configs/cls_mambaout_femto.py 8 --auto-scale-lr
_base_ = ['./_base_/cls_mambaout.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

model = dict(
    backbone=dict(arch='femto', drop_path_rate=0.025),
    head=dict(in_channels=288))
