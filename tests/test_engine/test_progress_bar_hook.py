import re
import sys
from pathlib import Path

from mmengine.config import Config
from mmengine.runner import Runner

import mmmamba  # noqa: F401

TEST_DATA = Path(__file__).resolve().parents[1] / 'data'


def test_progress_bar_counts_every_val_batch(tmp_path, capsys):
    if str(TEST_DATA) not in sys.path:
        sys.path.insert(0, str(TEST_DATA))
    cfg = Config.fromfile(str(TEST_DATA / 'toy_regression_val_config.py'))
    cfg.work_dir = str(tmp_path)
    cfg.custom_hooks = [dict(type='mmmamba.EvalProgressBarHook')]
    cfg.optim_wrapper.type = 'OptimWrapper'
    cfg.optim_wrapper.pop('loss_scale')
    runner = Runner.from_cfg(cfg)
    runner.val()
    out = capsys.readouterr().out
    # 64 samples in batches of 8: mmengine's bar ends at "8/8, <rate> task/s".
    assert re.search(r'8/8, [0-9.]+ task/s', out)
