"""Convert an official (yuweihao/MambaOut) or timm ``mambaout_*`` checkpoint to mmmamba's keys.

The output is an mmpretrain classifier checkpoint (``backbone.*`` for ``mmmamba.MambaOut`` with
``gap_before_final_norm=True``, ``head.*`` for ``mmmamba.MambaOutHead``)::

    python tools/model_converters/mambaout2mmmamba.py mambaout_tiny.pth mambaout_tiny_mmmamba.pth

Use it as ``load_from`` of a ``configs/cls_mambaout_*.py`` classifier, or as the backbone's
``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='backbone.')`` of a detector or
segmentor (the backbone also converts on the fly, so this step is optional there).
"""
import argparse
from pathlib import Path

import torch

from mmmamba.models.backbones.mambaout import convert_mambaout
from mmmamba.utils.checkpoint import read_state_dict


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='official or timm MambaOut checkpoint (path or URL)')
    parser.add_argument('dst', help='where to save the converted checkpoint')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    state_dict = read_state_dict(args.src)
    converted = convert_mambaout(state_dict)
    if converted is state_dict:
        print(f'{args.src} already has mmmamba keys; saving it unchanged')
    dst = Path(args.dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(dict(state_dict=converted, meta=dict(converted_from=str(args.src))), dst)
    print(f'saved {len(converted)} tensors to {dst}')


if __name__ == '__main__':
    main()
