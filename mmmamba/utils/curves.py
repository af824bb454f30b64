"""Training curves from mmengine's scalar logs.

mmengine's ``LocalVisBackend`` writes ``<work_dir>/<timestamp>/vis_data/scalars.json``, one JSON
object per logged training step (``{"loss": ..., "epoch": 1, "iter": 4, ...}``; validation lines
carry no ``iter`` and are skipped here). Each ``loss`` is the logger's mean over its interval.
"""
import json
from pathlib import Path
from typing import Dict, List, Tuple, Union


def read_scalars(path: Union[str, Path], key: str = 'loss') -> List[Tuple[int, int, float]]:
    """``(epoch, iteration, value)`` of ``key`` for every training line of a scalars.json."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'no scalar log at {path}: pass the vis_data/scalars.json that '
                                f'mmengine wrote under the run\'s work_dir/<timestamp>/')
    points, record = [], {}
    with path.open() as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            record = json.loads(line)
            if key in record and 'iter' in record:
                points.append((int(record.get('epoch', 0)), int(record['iter']),
                               float(record[key])))
    if not points:
        raise ValueError(f'{path} has no training line with {key!r}; its keys are e.g. '
                         f'{sorted(record)}')
    return points


def epoch_means(points: List[Tuple[int, int, float]]) -> Dict[int, float]:
    """Mean of the logged values of each epoch, in epoch order."""
    sums: Dict[int, List[float]] = {}
    for epoch, _, value in points:
        sums.setdefault(epoch, []).append(value)
    return {e: sum(v) / len(v) for e, v in sorted(sums.items())}


def plot_curve(points: List[Tuple[int, int, float]], out: Union[str, Path], key: str = 'loss',
               title: str = '', reference: Tuple[float, str] = None) -> Path:
    """Draw ``key`` against the iteration (logged points and epoch means) into a PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    ax.plot([p[1] for p in points], [p[2] for p in points], color='0.7', lw=1,
            label=f'{key} (logged)')
    last_iter = {}
    for epoch, iteration, _ in points:
        last_iter[epoch] = iteration
    means = epoch_means(points)
    ax.plot(list(last_iter.values()), list(means.values()), 'o-', color='tab:blue', ms=3,
            label=f'{key}, epoch mean')
    if reference is not None:
        ax.axhline(reference[0], color='tab:red', ls='--', lw=1, label=reference[1])
    ax.set_xlabel('iteration')
    ax.set_ylabel(key)
    ax.set_title(title)
    ax.legend(loc='best', fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
