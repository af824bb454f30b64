"""Plot a training curve of an mmengine run and print its epoch means.

    python tools/analysis_tools/plot_curve.py work_dirs/dino_toy/<timestamp>/vis_data/scalars.json \
        --out work_dirs/dino_toy/loss.png --title 'toy DINO' --reference 6.931 'log 1024'
"""
import argparse

from mmmamba.utils.curves import epoch_means, plot_curve, read_scalars


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('scalars', help="the run's vis_data/scalars.json")
    parser.add_argument('--key', default='loss', help='the logged value to plot')
    parser.add_argument('--out', required=True, help='PNG to write')
    parser.add_argument('--title', default='')
    parser.add_argument('--reference', nargs=2, metavar=('VALUE', 'LABEL'),
                        help='a horizontal reference line, e.g. 6.931 "log 1024"')
    args = parser.parse_args()
    points = read_scalars(args.scalars, args.key)
    reference = (float(args.reference[0]), args.reference[1]) if args.reference else None
    plot_curve(points, args.out, args.key, args.title, reference)
    print(f'{args.key} per epoch: ' + ', '.join(
        f'{epoch}: {value:.3f}' for epoch, value in epoch_means(points).items()))
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
