"""Time the hidden-attention computation: all channels' M of one Vim layer (both directions,
combined as the layer averages them) on a real token sequence.

    OMP_NUM_THREADS=1 python tools/analysis_tools/benchmark_analysis.py --arch small --img 224

Builds a random-init Vim of the given size, captures layer ``--layer``'s scan input on one
image (197 tokens for a 224² image with 16² patches and the class token) and times
``mixer_hidden_attention`` (the best of ``--repeat`` runs, after one warm-up).
"""
import argparse
import time

import torch

from mmmamba.analysis import capture_mixer_inputs, mixer_hidden_attention
from mmmamba.models.backbones.vim import Vim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--arch', default='small', help='Vim arch (tiny, small, base, atto)')
    parser.add_argument('--img', type=int, default=224, help='image side in pixels')
    parser.add_argument('--layer', type=int, default=0, help='layer index')
    parser.add_argument('--chunk-size', type=int, default=16, help='chunk of the computation')
    parser.add_argument('--repeat', type=int, default=3, help='timed runs (best is printed)')
    args = parser.parse_args()
    torch.manual_seed(0)
    model = Vim(arch=args.arch, img_size=args.img, out_indices=args.layer).eval()
    mixer = model.layers[args.layer].mixer
    with capture_mixer_inputs({'m': mixer}) as records, torch.no_grad():
        model(torch.randn(1, 3, args.img, args.img))
    xs = records['m'].scan_input
    mixer_hidden_attention(mixer, xs, chunk_size=args.chunk_size)  # warm-up
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        att = mixer_hidden_attention(mixer, xs, chunk_size=args.chunk_size)
        times.append(time.perf_counter() - start)
    _, K, d, L = xs.shape
    print(f'Vim-{args.arch} layer {args.layer}: {K} directions x {d} channels, {L} tokens, '
          f'M {tuple(att.matrix.shape)}; threads={torch.get_num_threads()}; '
          f'best of {args.repeat}: {min(times):.3f} s (mean {sum(times) / len(times):.3f} s)')


if __name__ == '__main__':
    main()
