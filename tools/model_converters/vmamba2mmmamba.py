"""Convert an official VMamba checkpoint (github.com/MzeroMiko/VMamba, v2 or vanilla v0, legacy
key names included) to mmmamba's keys.

The output is an mmpretrain classifier checkpoint (``backbone.*`` for ``mmmamba.VMamba`` with
``out_indices=(3, )``, ``head.fc.*`` for a ``LinearClsHead`` after ``GlobalAveragePooling``)::

    python tools/model_converters/vmamba2mmmamba.py vssm1_tiny_0230s_ckpt_epoch_264.pth out.pth

Use it as ``load_from`` of a ``configs/cls_vmamba_*.py`` classifier, or as the backbone's
``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')`` of a detector or
segmentor (the backbone also converts on the fly, so this step is optional there).
"""
import argparse

from mmmamba.models.backbones.vmamba import convert_vmamba
from mmmamba.utils.checkpoint import convert_checkpoint_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='official VMamba checkpoint (path or URL)')
    parser.add_argument('dst', help='where to save the converted checkpoint')
    args = parser.parse_args()
    convert_checkpoint_file(args.src, args.dst, convert_vmamba)


if __name__ == '__main__':
    main()
