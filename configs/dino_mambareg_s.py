# DINO pre-training of Mamba-Reg-S on ImageNet-1k, 100 epochs, 16 GPUs x 64 images, FP16 (the
# DINO paper's ViT-S recipe, see ./_base_/dino_imagenet.py), as in Yang et al., "RNN as Linear
# Transformer" (DINO-pre-trained Mamba-Reg). The global representation is Mamba-Reg's: the 12
# registers after the final norm, each reduced 384 -> 192 and concatenated, 2304 wide.
#   bash tools/dist_train.sh configs/dino_mambareg_s.py 16
# Then: MAMBAREG_S_CKPT=work_dirs/dino_mambareg_s/epoch_100.pth for
# configs/linprobe_mambareg_s.py.
_base_ = ['./_base_/dino_imagenet.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='mmmamba.MambaReg',
        arch='small',
        out_indices=(-1, ),
        out_type='registers',
        drop_path_rate=0.1),
    neck=dict(in_channels=12 * 384 // 2))
