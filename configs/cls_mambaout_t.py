# MambaOut-T on ImageNet-1k, 224x224, 300 epochs, total batch 4096 (32 GPUs x 128 images).
# Paper (arXiv 2405.07992, Table 1): 26.5M params, 4.5G MACs, 82.7% top-1.
# Drop path 0.2: scripts/train_mambaout_tiny.sh of the official repository.
#   bash tools/dist_train.sh configs/cls_mambaout_t.py 8 --auto-scale-lr
_base_ = ['./_base_/cls_mambaout.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

model = dict(
    backbone=dict(arch='tiny', drop_path_rate=0.2),
    head=dict(in_channels=576))
