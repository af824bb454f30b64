"""Convert an official Vim (github.com/hustvl/Vim) or Mamba-Reg (github.com/wangf3014/Mamba-Reg)
checkpoint to mmmamba's keys.

The output is an mmpretrain classifier checkpoint (``backbone.*`` for ``mmmamba.Vim`` with
``out_type='cls_token'`` or ``mmmamba.MambaReg`` with ``out_type='registers'``, ``head.fc.*``
for a ``LinearClsHead``)::

    python tools/model_converters/vim2mmmamba.py vim_t_midclstok_76p1acc.pth out.pth
    python tools/model_converters/vim2mmmamba.py mambar_small_patch16_224.pth out.pth

The position embedding keeps the checkpoint's grid (14x14 for the released 224² models), which
matches the backbones' default ``img_size=224``; ``--img-size`` resizes it for a model built with
another ``img_size``. Use the result as ``load_from`` of a classifier, or as the backbone's
``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')`` of a detector or
segmentor (the backbone also converts and resizes on the fly, so this step is optional there).
"""
import argparse
import functools
import math

from mmmamba.models.backbones.vim import convert_vim
from mmmamba.utils.checkpoint import convert_checkpoint_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='official Vim or Mamba-Reg checkpoint (path or URL)')
    parser.add_argument('dst', help='where to save the converted checkpoint')
    parser.add_argument(
        '--img-size', type=int, nargs='+', metavar='SIZE',
        help='img_size (one value, or height and width) of the model the checkpoint is for; '
        'the position embedding is resized to its patch grid. Default: keep the grid')
    parser.add_argument('--patch-size', type=int, default=16, help='patch size (default: 16)')
    args = parser.parse_args()
    converter = convert_vim
    if args.img_size is not None:
        if len(args.img_size) not in (1, 2):
            parser.error(f'--img-size takes one or two values, got {args.img_size}')
        height, width = args.img_size * 2 if len(args.img_size) == 1 else args.img_size
        grid = (math.ceil(height / args.patch_size), math.ceil(width / args.patch_size))
        converter = functools.partial(convert_vim, grid=grid)
    convert_checkpoint_file(args.src, args.dst, converter)


if __name__ == '__main__':
    main()
