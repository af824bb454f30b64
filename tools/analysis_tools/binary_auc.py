"""Binary-AUC of a backbone's per-layer activation maps on a segmentation set, with overlays.

For each image of an ADE-layout set (``<data-root>/images/<split>/*.jpg`` with label maps
``<data-root>/annotations/<split>/*.png``) and each layer of the backbone, the activation map
(``--source``: ``feature_norm``, the channel L2 norm of the layer's output; or
``token_attention``, the class token's / registers' row of the layer's hidden attention, Vim and
Mamba-Reg only) is scored against the foreground mask with
:class:`mmmamba.analysis.BinaryAUCMetric` (protocol: :mod:`mmmamba.analysis.binary_auc`: map
resized bilinearly to the mask, ties at average rank, one-class images skipped and counted).
Prints the per-layer table and writes heat-map overlays (PNG) of the first ``--overlays``
images.

    python tools/analysis_tools/binary_auc.py --family Vim --arch tiny --img-size 224 \\
        --data-root data/toy/ade --background-labels 3 4 --source token_attention
    python tools/analysis_tools/binary_auc.py CONFIG --checkpoint CKPT --data-root data/ade
"""
import argparse
import os
from pathlib import Path

import mmcv
import numpy as np
import torch

from mmmamba.analysis import (BinaryAUCMetric, activation_maps, load_backbone, load_image,
                              resize_map)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', nargs='?', help='model config (else --family/--arch)')
    parser.add_argument('--checkpoint', help='weights (else random init)')
    parser.add_argument('--family', default='Vim', help='Vim, MambaReg, VMamba, MambaOut')
    parser.add_argument('--arch', default='atto', help='arch of --family (no config)')
    parser.add_argument('--data-root', default='data/toy/ade', help='ADE-layout set')
    parser.add_argument('--split', default='validation', help='images/<split> folder')
    parser.add_argument('--img-size', type=int, default=224, help='image side fed to the model')
    parser.add_argument('--source', default='feature_norm',
                        choices=['feature_norm', 'token_attention'], help='activation map')
    parser.add_argument('--background-labels', type=int, nargs='+', default=[0],
                        help='label values of the background (raw values in the PNGs)')
    parser.add_argument('--ignore-index', type=int, default=255,
                        help='label left out of the AUC (-1: none)')
    parser.add_argument('--num-images', type=int, help='first N images only')
    parser.add_argument('--overlays', type=int, default=4, help='images with overlay PNGs')
    parser.add_argument('--seed', type=int, default=0, help='seed of a random init')
    parser.add_argument('--out', default='work_dirs/binary_auc', help='output folder')
    return parser.parse_args()


def overlay(rgb: np.ndarray, activation: torch.Tensor) -> np.ndarray:
    """The map resized to the image (bilinear), min-max scaled, as a jet heat map over it."""
    import matplotlib
    heat = resize_map(activation, rgb.shape[:2]).numpy()
    heat = (heat - heat.min()) / max(heat.max() - heat.min(), 1e-12)
    colour = matplotlib.colormaps['jet'](heat)[..., :3] * 255
    return (0.5 * rgb + 0.5 * colour).astype(np.uint8)


def main() -> None:
    args = parse_args()
    torch.manual_seed(args.seed)
    extra = {} if args.config or args.family in ('VMamba', 'MambaOut') else dict(
        img_size=args.img_size)
    backbone, mean, std = load_backbone(args.config, args.checkpoint, args.family, args.arch,
                                        **extra)
    images = sorted((Path(args.data_root) / 'images' / args.split).glob('*.jpg'))
    if not images:
        raise SystemExit(f'no *.jpg under {Path(args.data_root) / "images" / args.split}; '
                         f'generate the toy set with tools/dataset_converters/make_toy_data.py '
                         f'--out data/toy --kinds ade, or pass --data-root')
    images = images[:args.num_images] if args.num_images else images
    ignore = None if args.ignore_index < 0 else args.ignore_index
    metrics, kept = {}, []
    for index, path in enumerate(images):
        label_path = Path(args.data_root) / 'annotations' / args.split / (path.stem + '.png')
        labels = torch.from_numpy(mmcv.imread(str(label_path), flag='unchanged').astype(
            np.int64))
        x, _ = load_image(str(path), (args.img_size, args.img_size), mean, std)
        maps = activation_maps(backbone, x, args.source)
        for name, value in maps.items():
            metric = metrics.setdefault(
                name, BinaryAUCMetric(background_labels=args.background_labels,
                                      ignore_index=ignore))
            metric.process({}, [dict(activation_map=value[0], gt_sem_seg=labels[None])])
        if index < args.overlays:
            kept.append((path, labels, maps))
    print(f'{type(backbone).__name__}: Binary-AUC of {args.source} maps on {len(images)} images '
          f'of {args.data_root}/{args.split} (background labels {args.background_labels}, '
          f'ignore {ignore})')
    print(f"{'layer':24s} {'AUC':>7s} {'scored':>7s} {'skipped':>8s}")
    table = {}
    for name, metric in metrics.items():
        result = metric.compute_metrics(metric.results)
        table[name] = result
        print(f"{name:24s} {result['auc']:7.4f} {result['num_scored']:7d} "
              f"{result['skipped']:8d}")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f'auc_{args.source}.csv'), 'w') as f:
        f.write('layer,auc,num_scored,skipped\n')
        for name, r in table.items():
            f.write(f"{name},{r['auc']:.6f},{r['num_scored']},{r['skipped']}\n")
    save_overlays(args, kept, table)


def save_overlays(args, kept, table) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    for path, labels, maps in kept:
        rgb = mmcv.imread(str(path), channel_order='rgb')
        names = list(maps)
        shown = [names[i] for i in np.linspace(0, len(names) - 1, min(5, len(names))).round()
                 .astype(int)]
        fig, axes = plt.subplots(1, 2 + len(shown), figsize=(3 * (2 + len(shown)), 3.3))
        axes[0].imshow(rgb)
        axes[0].set_title(path.name, fontsize=8)
        foreground = ~np.isin(labels.numpy(), args.background_labels)
        axes[1].imshow(foreground, cmap='gray')
        axes[1].set_title('foreground mask', fontsize=8)
        for ax, name in zip(axes[2:], shown):
            ax.imshow(overlay(rgb, maps[name][0]))
            ax.set_title(f"{name}\nmean AUC {table[name]['auc']:.3f}", fontsize=8)
        for ax in axes:
            ax.axis('off')
        fig.tight_layout()
        out = os.path.join(args.out, f'overlay_{args.source}_{path.stem}.png')
        fig.savefig(out, dpi=80, bbox_inches='tight')
        plt.close(fig)
        print(f'overlay: {out}')


if __name__ == '__main__':
    main()
