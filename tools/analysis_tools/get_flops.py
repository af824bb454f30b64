"""Parameters and MACs of the model of an mmmamba config, with mmengine's complexity analysis.

    python tools/analysis_tools/get_flops.py configs/cls_mambaout_t.py --shape 224 --paper
    python tools/analysis_tools/get_flops.py configs/mask_rcnn_mambaout_t.py \
        --shape 800 1280 --paper
    python tools/analysis_tools/get_flops.py configs/upernet_mambaout_t.py --shape 512 2048 --paper

The task is read from the config's ``default_scope``; what is counted follows the task
libraries' own ``get_flops`` tools. mmengine's ``FlopAnalyzer`` counts one multiply-add as one
"flop" (convolutions, linear layers, matmuls, norms; not element-wise activations or sums), so
its figure is in MACs, the unit of the paper.

The analyzer is ``mmmamba.ops.flop_analyzer``: mmengine's ``FlopAnalyzer`` with the handles of
``mmmamba.ops.scan_flop_handles()`` added, so a selective scan counts as the VMamba release
counts it (``9 * B * L * D * N``, plus ``B * D * L`` each for the ``D`` skip and the ``z`` gate
when given; see ``mmmamba/ops/flops.py``) and ``cross_scan``/``cross_merge`` count zero. The
trace runs the scan on its ``torch`` backend on every device (one graph node per call); a
``MMMAMBA_SCAN_BACKEND=reference`` in the environment is refused. ``--show-table`` shows
parameters and MACs per module (no activation column).

- ``mmpretrain``: the classifier's ``mode='tensor'`` forward on one image: backbone and head.
- ``mmdet``: the detector's ``mode='tensor'`` forward (mmdet's ``TwoStageDetector._forward``):
  backbone, neck, RPN head, then the RoI heads on the RPN's proposals: all of them (at most
  ``test_cfg.rpn.max_per_img``, 1000) through the box head, the first 100 through the mask
  head. This is the convention of the paper's detection MACs (and of mmdet 2.x's
  ``forward_dummy``). The number of RoIs is printed; the weights are random, the seed fixed.
- ``mmseg``: the segmentor's ``mode='tensor'`` forward (backbone and decode head); the
  auxiliary head, unused at inference, is left out of the MACs as mmseg's tool does. Both
  parameter counts, with and without it, are printed; the paper's include it.

``Params`` is the whole model as the config builds it (what is trained and saved).
"""
import argparse
import os.path as osp
from functools import partial
from typing import Dict, Optional, Tuple

import torch
from mmengine.analysis import parameter_count
from mmengine.analysis.print_helper import complexity_stats_table
from mmengine.config import Config, DictAction
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS, init_default_scope

from mmmamba.ops import flop_analyzer

# Published figures, keyed by config name: (params in M, MACs in G, input (H, W)), written with
# the publication's digits. MambaOut: the paper (arXiv 2405.07992, Tables 1, 3, 4; Kobe: the
# official README). VMamba: the v2 release's README (github.com/MzeroMiko/VMamba; T[s1l8],
# S[s2l15], B[s2l15]), whose "FLOPs" are fvcore multiply-adds with the scan at 9 * B * L * D * N.
# Vim: its paper and release give parameters only; the MACs are the MambaOut paper's (Table 1).
# We count Vim's two scans per layer by VMamba's rule as well, which that table does not seem to
# do (ours: Ti 1.82G, S 5.90G, of which the scans are 0.52G and 1.05G).
PAPER_COMPLEXITY: Dict[str, Tuple[float, float, Tuple[int, int]]] = {
    'cls_mambaout_femto': (7.3, 1.2, (224, 224)),
    'cls_mambaout_kobe': (9.1, 1.5, (224, 224)),
    'cls_mambaout_t': (26.5, 4.5, (224, 224)),
    'cls_mambaout_s': (48.5, 9.0, (224, 224)),
    'cls_mambaout_b': (84.8, 15.8, (224, 224)),
    'mask_rcnn_mambaout_t': (43, 262, (800, 1280)),
    'mask_rcnn_mambaout_s': (65, 354, (800, 1280)),
    'mask_rcnn_mambaout_b': (100, 495, (800, 1280)),
    'upernet_mambaout_t': (54, 938, (512, 2048)),
    'upernet_mambaout_s': (76, 1032, (512, 2048)),
    'upernet_mambaout_b': (112, 1178, (512, 2048)),
    'cls_vmamba_t': (30, 4.9, (224, 224)),
    'cls_vmamba_s': (50, 8.7, (224, 224)),
    'cls_vmamba_b': (89, 15.4, (224, 224)),
    'mask_rcnn_vmamba_t': (50, 271, (800, 1280)),
    'mask_rcnn_vmamba_s': (70, 384, (800, 1280)),
    'mask_rcnn_vmamba_b': (108, 485, (800, 1280)),
    'upernet_vmamba_t': (62, 949, (512, 2048)),
    'upernet_vmamba_s': (82, 1028, (512, 2048)),
    'upernet_vmamba_b': (122, 1170, (512, 2048)),
    'cls_vim_ti': (7, 1.5, (224, 224)),
    'cls_vim_s': (26, 5.1, (224, 224)),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Count the parameters and MACs of a model')
    parser.add_argument('config', help='config file path')
    parser.add_argument(
        '--shape', type=int, nargs='+', default=[224, 224], help='input size: S or H W')
    parser.add_argument(
        '--paper', action='store_true', help="print the paper's figures next to the measured ones")
    parser.add_argument(
        '--show-table', action='store_true', help='print the per-module complexity table')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, e.g. model.backbone.arch=small')
    return parser.parse_args()


def _input_size(shape: list) -> Tuple[int, int]:
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    raise ValueError(f'--shape takes S or H W, got {shape}')


def _det_inputs(model: torch.nn.Module, height: int, width: int) -> Tuple[torch.Tensor, list]:
    from mmdet.structures import DetDataSample

    meta = dict(img_shape=(height, width), ori_shape=(height, width), scale_factor=(1., 1.))
    data = model.data_preprocessor(
        dict(
            inputs=[torch.randint(0, 256, (3, height, width), dtype=torch.uint8)],
            data_samples=[DetDataSample(metainfo=meta)]),
        training=False)
    return data['inputs'], data['data_samples']


def _seg_inputs(model: torch.nn.Module, height: int, width: int) -> torch.Tensor:
    from mmseg.structures import SegDataSample

    meta = dict(img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width))
    data = model.data_preprocessor(
        dict(
            inputs=[torch.randint(0, 256, (3, height, width), dtype=torch.uint8)],
            data_samples=[SegDataSample(metainfo=meta)]),
        training=False)
    return data['inputs']


def measure(cfg: Config, height: int, width: int, show_table: bool = False) -> dict:
    """Build the model of ``cfg`` (random weights) and count its parameters and MACs.

    Returns a dict with ``params`` (whole model), ``params_counted`` (the modules the MACs
    were counted on), ``macs``, ``input_shape`` (H, W after padding) and, for detectors,
    ``num_rois`` (box head, mask head).
    """
    scope = cfg.get('default_scope', None)
    if scope not in ('mmpretrain', 'mmdet', 'mmseg'):
        raise ValueError(f'default_scope must be mmpretrain, mmdet or mmseg, got {scope!r}')
    init_default_scope(scope)
    torch.manual_seed(0)

    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.eval()
    result = dict(params=sum(p.numel() for p in model.parameters()))

    if scope == 'mmpretrain':
        inputs = torch.randn(1, 3, height, width)
    elif scope == 'mmseg':
        inputs = _seg_inputs(model, height, width)
        model.auxiliary_head = None
    else:
        inputs, data_samples = _det_inputs(model, height, width)
        model.forward = partial(model.forward, data_samples=data_samples, mode='tensor')
        num_rois: Dict[str, int] = {}
        for name in ('bbox_roi_extractor', 'mask_roi_extractor'):
            extractor = getattr(model.roi_head, name, None)
            if extractor is not None:
                extractor.register_forward_hook(
                    partial(_record_rois, num_rois=num_rois, name=name))
        result['num_rois'] = num_rois
    result['input_shape'] = tuple(inputs.shape[-2:])

    with torch.no_grad():
        # mmengine's FlopAnalyzer with the scan handles; its trace is lazy, run by total()
        flops = flop_analyzer(model, (inputs, ))
        result['macs'] = flops.total()
        result['table'] = ('\n' + complexity_stats_table(flops, show_param_shapes=True)
                           if show_table else '')
    result['params_counted'] = parameter_count(model)['']
    return result


def _record_rois(module: torch.nn.Module, args: tuple, output: torch.Tensor, num_rois: dict,
                 name: str) -> None:
    num_rois[name] = int(args[1].shape[0])  # args: (feats, rois)


def _paper_note(measured: float, paper: Optional[float], unit: float, suffix: str) -> str:
    """``(paper X, +d%)``, noting when the difference is within the paper's last digit."""
    if paper is None:
        return ''
    digits = repr(paper).split('.')[1] if isinstance(paper, float) else ''
    half_step = 0.5 * 10**-len(digits)
    note = f'   (paper {paper}{suffix}, {100 * (measured / unit - paper) / paper:+.1f}%'
    if abs(measured / unit - paper) <= half_step:
        note += ', equal at the paper\'s precision'
    return note + ')'


def main() -> None:
    args = parse_args()
    height, width = _input_size(args.shape)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    # Counting needs no pretrained weights: never download or read them.
    cfg.model.get('backbone', {}).pop('init_cfg', None)

    result = measure(cfg, height, width, show_table=args.show_table)

    name = osp.splitext(osp.basename(args.config))[0]
    paper_params = paper_macs = None
    if args.paper:
        if name not in PAPER_COMPLEXITY:
            print(f'no paper figures for {name}; known: {", ".join(PAPER_COMPLEXITY)}')
        else:
            paper_params, paper_macs, paper_shape = PAPER_COMPLEXITY[name]
            if paper_shape != (height, width):
                print(f'NOTE: the paper counts MACs at {paper_shape[0]}x{paper_shape[1]}, '
                      f'not {height}x{width}')
                paper_macs = None

    if args.show_table:
        print(result['table'])
    line = '=' * 60
    print(line)
    print(f'Config:      {args.config}')
    print(f'Input shape: 1x3x{result["input_shape"][0]}x{result["input_shape"][1]}')
    print(f'Params:      {result["params"] / 1e6:.2f}M ({result["params"]})'
          + _paper_note(result['params'], paper_params, 1e6, 'M'))
    if result['params_counted'] != result['params']:
        print(f'Params without the auxiliary head: {result["params_counted"] / 1e6:.2f}M '
              f'({result["params_counted"]})')
    print(f'MACs:        {result["macs"] / 1e9:.2f}G ({result["macs"]})'
          + _paper_note(result['macs'], paper_macs, 1e9, 'G'))
    if 'num_rois' in result:
        rois = result['num_rois']
        print(f'RoIs:        {rois.get("bbox_roi_extractor", 0)} through the box head, '
              f'{rois.get("mask_roi_extractor", 0)} through the mask head')
    print(line)


if __name__ == '__main__':
    main()
