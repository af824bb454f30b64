"""The torch >= 2.6 resume fix: mmengine checkpoints load with weights_only on, nothing else does."""
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mmmamba  # noqa: F401  (applies the compatibility layer)
from mmmamba.utils.launch import adapt_to_device

TEST_DATA = Path(__file__).resolve().parents[1] / "data"


class NotAllowed:

    def __reduce__(self):
        return (print, ('code ran while unpickling',))


def _runner(work_dir, max_epochs, resume=False):
    if str(TEST_DATA) not in sys.path:
        sys.path.insert(0, str(TEST_DATA))
    cfg = Config.fromfile(str(TEST_DATA / 'toy_regression_config.py'))
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_epochs = max_epochs
    cfg.resume = resume
    cfg.experiment_name = f'epochs{max_epochs}'
    adapt_to_device(cfg)
    return Runner.from_cfg(cfg)


def test_resume_restores_iteration_and_optimizer_state(tmp_path):
    first = _runner(tmp_path, max_epochs=1)
    first.train()
    ckpt = tmp_path / 'epoch_1.pth'
    assert ckpt.is_file()
    # The checkpoint holds numpy objects (message hub buffers): without mmmamba, torch refuses it.
    assert _refused_without_mmmamba(ckpt)
    saved = torch.load(ckpt, map_location='cpu')  # weights_only=True is torch's default here
    saved_step = saved['optimizer']['state'][0]['step'].item()
    assert saved['meta']['iter'] == 8 and saved_step == 8

    second = _runner(tmp_path, max_epochs=2, resume=True)
    second.train()
    assert second.iter == 16 and second.epoch == 2
    state = second.optim_wrapper.optimizer.state_dict()['state'][0]
    assert state['step'].item() == 16  # 8 restored + 8 new, not 8 from scratch


def _refused_without_mmmamba(path) -> bool:
    """Load ``path`` with torch's default (weights-only) loader in an interpreter without mmmamba."""
    code = ('import pickle, sys, torch\n'
            'try:\n    torch.load(sys.argv[1])\n'
            'except pickle.UnpicklingError:\n    sys.exit(3)\n')
    return subprocess.run([sys.executable, '-c', code, str(path)]).returncode == 3


def test_weights_only_still_refuses_other_globals(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'payload': NotAllowed()}, path)
    # torch's own refusal, naming the global the file asks for
    with pytest.raises(pickle.UnpicklingError,
                       match=r'(?s)Weights only load failed.*GLOBAL print was not an allowed'):
        torch.load(path)


def test_getattr_allowed_only_for_history_buffer_methods(tmp_path):
    from mmengine.logging import HistoryBuffer
    path = tmp_path / 'walk.pth'
    # Pickled as getattr(HistoryBuffer, '__init__'): an allowed class, a forbidden attribute,
    # the first step of a walk towards a function's __globals__ and eval.
    torch.save({'f': HistoryBuffer.__init__}, path)
    with pytest.raises(pickle.UnpicklingError, match='only the statistics methods'):
        torch.load(path)
    ok = tmp_path / 'ok.pth'
    torch.save({'f': HistoryBuffer.mean}, ok)
    assert torch.load(ok)['f'] is HistoryBuffer.mean
