"""Reading and plotting an mmengine scalar log (mmmamba/utils/curves.py)."""
import json

import pytest

from mmmamba.utils.curves import epoch_means, plot_curve, read_scalars


def _write_log(path, lines):
    path.write_text('\n'.join(json.dumps(line) for line in lines) + '\n')
    return path


def test_training_lines_are_read_and_averaged_per_epoch(tmp_path):
    log = _write_log(tmp_path / 'scalars.json', [
        dict(loss=4.0, lr=1e-3, epoch=1, iter=4, step=4),
        dict(loss=2.0, lr=1e-3, epoch=1, iter=8, step=8),
        dict(loss=1.0, lr=1e-3, epoch=2, iter=12, step=12),
        dict(**{'accuracy/top1': 50.0}, step=2),  # a validation line: no iteration
    ])
    points = read_scalars(log)
    assert points == [(1, 4, 4.0), (1, 8, 2.0), (2, 12, 1.0)]
    assert list(epoch_means(points).items()) == [(1, 3.0), (2, 1.0)]
    out = plot_curve(points, tmp_path / 'plots' / 'loss.png', reference=(3.5, 'log K'))
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_bad_logs_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'no scalar log at .*missing\.json'):
        read_scalars(tmp_path / 'missing.json')
    log = _write_log(tmp_path / 'scalars.json', [dict(lr=1e-3, epoch=1, iter=4)])
    with pytest.raises(ValueError, match=r"has no training line with 'loss'; its keys are e\.g\. "
                                         r"\['epoch', 'iter', 'lr'\]"):
        read_scalars(log)
