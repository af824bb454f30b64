"""Convert an official (yuweihao/MambaOut) or timm ``mambaout_*`` checkpoint to mmmamba's keys.

The output is an mmpretrain classifier checkpoint (``backbone.*`` for ``mmmamba.MambaOut`` with
``gap_before_final_norm=True``, ``head.*`` for ``mmmamba.MambaOutHead``)::

    python tools/model_converters/mambaout2mmmamba.py mambaout_tiny.pth mambaout_tiny_mmmamba.pth

Use it as ``load_from`` of a ``configs/cls_mambaout_*.py`` classifier, or as the backbone's
``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')`` of a detector or
segmentor (the backbone also converts on the fly, so this step is optional there).
"""
import argparse

from mmmamba.models.backbones.mambaout import convert_mambaout
from mmmamba.utils.checkpoint import convert_checkpoint_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='official or timm MambaOut checkpoint (path or URL)')
    parser.add_argument('dst', help='where to save the converted checkpoint')
    args = parser.parse_args()
    convert_checkpoint_file(args.src, args.dst, convert_mambaout)


if __name__ == '__main__':
    main()
