# MambaOut-Kobe on ImageNet-1k, 224x224, 300 epochs, total batch 4096 (32 GPUs x 128 images).
# Official README (a later release than the paper's table): 9.1M params, 1.5G MACs, 80.0% top-1.
# Drop path 0.025: scripts/train_mambaout_kobe.sh of the official repository.
#   bash tools/dist_train.sh configs/cls_mambaout_kobe.py 8 --auto-scale-lr
_base_ = ['./_base_/cls_mambaout.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

model = dict(
    backbone=dict(arch='kobe', drop_path_rate=0.025),
    head=dict(in_channels=288))
