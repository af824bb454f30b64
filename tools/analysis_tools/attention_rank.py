"""Numerical rank of a Mamba layer's hidden attention next to linear and softmax attention.

For one image and one mixer (Vim / Mamba-Reg ``BiMambaMixer`` or VMamba ``SS2D``) this
computes, on the tokens entering that mixer,

- Mamba: the layer's hidden attention ``M`` per channel (``mmmamba.analysis``; Vim:
  ``½(M_f + J M_b J)``, VMamba: the four directions summed in raster order);
- linear attention (``elu + 1`` features) and softmax attention of a timm ViT ``Attention``
  layer on the same tokens (``--heads`` heads, random init with ``--seed``: a comparator of
  the same width, not a trained ViT),

and prints, for each, the mean numerical rank (singular values above ``--rtol`` times the
largest) of the full ``L x L`` matrix, of its ``c x c`` diagonal blocks and of the blocks below
them (``--chunk c``), then saves a PNG with the three matrices and their singular values.

    python tools/analysis_tools/attention_rank.py --family Vim --arch tiny --img-size 224 \\
        --img data/toy/ade/images/validation/ADE_val_00000001.jpg --out work_dirs/rank
    python tools/analysis_tools/attention_rank.py CONFIG --checkpoint CKPT --layer layers.5.mixer
"""
import argparse
import os

import torch
from timm.models.vision_transformer import Attention

from mmmamba.analysis import (capture_mixer_inputs, find_mixers, linear_attention_matrix,
                              load_backbone, load_image, mixer_hidden_attention, rank_summary,
                              run_all_layers, softmax_attention_matrix)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', nargs='?', help='model config (else --family/--arch)')
    parser.add_argument('--checkpoint', help='weights (else random init)')
    parser.add_argument('--family', default='Vim', help='Vim, MambaReg or VMamba (no config)')
    parser.add_argument('--arch', default='atto', help='arch of --family (no config)')
    parser.add_argument('--img', help='image file (else uniform noise)')
    parser.add_argument('--img-size', type=int, default=224, help='image side fed to the model')
    parser.add_argument('--layer', help="mixer name, e.g. 'layers.3.mixer' (default: middle)")
    parser.add_argument('--chunk', type=int, default=16, help='block side c')
    parser.add_argument('--rtol', type=float, default=1e-3, help='relative rank tolerance')
    parser.add_argument('--heads', type=int, help='comparator heads (default: width / 64)')
    parser.add_argument('--max-channels', type=int, default=96,
                        help='Mamba channels whose ranks are computed (evenly spaced)')
    parser.add_argument('--seed', type=int, default=0, help='seed of random inits and noise')
    parser.add_argument('--out', default='work_dirs/attention_rank', help='output folder')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.manual_seed(args.seed)
    extra = {} if args.config else dict(img_size=args.img_size) if args.family != 'VMamba' \
        else {}
    backbone, mean, std = load_backbone(args.config, args.checkpoint, args.family, args.arch,
                                        **extra)
    mixers = find_mixers(backbone)
    if not mixers:
        raise SystemExit(f'{type(backbone).__name__} has no SSM mixer (MambaOut has none): '
                         f'nothing to rank')
    names = list(mixers)
    name = args.layer or names[len(names) // 2]
    if name not in mixers:
        raise SystemExit(f'no mixer {name!r}; the mixers are {names}')
    mixer = mixers[name]
    image, _ = load_image(args.img, (args.img_size, args.img_size), mean, std, args.seed)
    seen = {}
    hook = mixer.register_forward_pre_hook(lambda m, a: seen.update(tokens=a[0].detach()))
    with capture_mixer_inputs({name: mixer}) as records, torch.no_grad():
        run_all_layers(backbone, image)
    hook.remove()
    record = records[name]
    att = mixer_hidden_attention(mixer, record.scan_input, record.grid)
    mamba = att.matrix[0]  # (d, L, L)
    tokens = seen['tokens']
    if tokens.dim() == 4:  # SS2D: (1, H, W, C) or (1, C, H, W) -> (1, L, C)
        tokens = tokens.flatten(2).transpose(1, 2) if getattr(mixer, 'channel_first', False) \
            else tokens.flatten(1, 2)
    width = tokens.shape[-1]
    heads = args.heads or max(1, width // 64)
    attn = Attention(width, num_heads=heads, qkv_bias=True).eval()
    linear = linear_attention_matrix(attn, tokens.float())[0]  # (heads, L, L)
    softmax = softmax_attention_matrix(attn, tokens.float())[0]
    d, L = mamba.shape[0], mamba.shape[-1]
    picked = torch.linspace(0, d - 1, min(args.max_channels, d)).round().long().unique()
    rows = [
        (f'Mamba M, per channel ({len(picked)} of {d})', mamba[picked]),
        ('Mamba M, channel mean', mamba.mean(0, keepdim=True)),
        (f'linear attention (elu+1), per head ({heads})', linear),
        (f'softmax attention, per head ({heads})', softmax),
    ]
    print(f'{type(backbone).__name__} {name}: L={L} tokens, chunk c={args.chunk}, '
          f'rtol={args.rtol}')
    header = f"{'matrix':44s} {'full':>8s} {'diag blk':>9s} {'below':>8s} {'below max':>9s}"
    print(header)
    print('-' * len(header))
    summaries = {}
    for label, stack in rows:
        s = rank_summary(stack.double(), args.chunk, args.rtol)
        summaries[label] = s
        print(f"{label:44s} {s['full']:8.1f} {s['diagonal']:9.2f} {s['below']:8.2f} "
              f"{s['below_max']:9.0f}")
    print(f'(ranks of L x L = {L} x {L}; blocks are {args.chunk} x {args.chunk}; SSM state '
          f'N = {mixer.ssm.d_state} per direction)')
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"rank_{name.replace('.', '_')}.png")
    save_plot(path, [('Mamba M (channel mean)', mamba.mean(0)),
                     ('linear attention (head mean)', linear.mean(0)),
                     ('softmax attention (head mean)', softmax.mean(0))],
              [mamba[picked], linear, softmax], args.chunk)
    print(f'plot: {path}')


def save_plot(path, matrices, stacks, chunk) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 3, figsize=(13, 8))
    for ax, (title, matrix), stack in zip(axes.T, matrices, stacks):
        image = ax[0].imshow(matrix.abs().clamp_min(1e-12).log10().numpy(), cmap='viridis')
        ax[0].set_title(f'{title}\nlog10 |entry|')
        for edge in range(chunk, matrix.shape[-1], chunk):
            ax[0].axhline(edge - .5, color='w', lw=.3)
            ax[0].axvline(edge - .5, color='w', lw=.3)
        fig.colorbar(image, ax=ax[0], fraction=.046)
        sv = torch.linalg.svdvals(stack.double())
        sv = (sv / sv[..., :1].clamp_min(1e-300)).mean(0)
        ax[1].semilogy(sv.numpy())
        ax[1].set_title('singular values / largest (mean)')
        ax[1].set_xlabel('index')
        ax[1].set_ylim(1e-8, 1.5)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == '__main__':
    main()
