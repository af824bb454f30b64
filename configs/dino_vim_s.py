# DINO pre-training of Vim-S on ImageNet-1k, 100 epochs, 16 GPUs x 64 images, FP16 (the DINO
# paper's ViT-S recipe, see ./_base_/dino_imagenet.py), as in Yang et al., "RNN as Linear
# Transformer" (DINO-pre-trained Vim). The global representation is the middle class token
# after the final norm, 384 wide; the 96^2 local crops use the position embedding resized to
# their 6x6 grid.
#   bash tools/dist_train.sh configs/dino_vim_s.py 16
# Then: VIM_S_CKPT=work_dirs/dino_vim_s/epoch_100.pth for configs/linprobe_vim_s.py,
# configs/mask_rcnn_vim_s.py or configs/upernet_vim_s.py.
_base_ = ['./_base_/dino_imagenet.py']
custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='mmmamba.Vim',
        arch='small',
        out_indices=(-1, ),
        out_type='cls_token',
        drop_path_rate=0.1),
    neck=dict(in_channels=384))
