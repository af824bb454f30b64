"""tools/train.py, tools/dist_train.sh and the import contract, run as a user runs them."""
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import mmmamba  # noqa: F401  (allow-lists what mmengine checkpoints hold, for torch.load)

REPO = Path(__file__).resolve().parents[2]
TOY_CONFIG = REPO / 'tests' / 'data' / 'toy_regression_config.py'
TOY_VAL_CONFIG = REPO / 'tests' / 'data' / 'toy_regression_val_config.py'


def _run(cmd, env, timeout=300):
    proc = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f'{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_dist_train_two_cpu_processes(tmp_path, tool_env):
    tool_env['PORT'] = '29517'
    log = _run(['bash', 'tools/dist_train.sh', str(TOY_CONFIG), '2', '--work-dir', str(tmp_path)],
               tool_env)
    assert 'gloo backend' in log
    ckpt = torch.load(tmp_path / 'epoch_2.pth', map_location='cpu')
    # 64 samples, batch 8 per process, 2 processes: 4 iterations per epoch (8 on one process).
    assert ckpt['meta']['iter'] == 8


def test_train_resume_continues_from_last_checkpoint(tmp_path, tool_env):
    base = [sys.executable, 'tools/train.py', str(TOY_CONFIG), '--work-dir', str(tmp_path)]
    _run(base + ['--cfg-options', 'train_cfg.max_epochs=1'], tool_env)
    log = _run(base + ['--resume', '--cfg-options', 'train_cfg.max_epochs=2'], tool_env)
    assert 'resumed epoch: 1, iter: 8' in log
    ckpt = torch.load(tmp_path / 'epoch_2.pth', map_location='cpu')
    assert ckpt['meta']['iter'] == 16
    assert ckpt['optimizer']['state'][0]['step'].item() == 16


def test_broken_module_fails_import_and_custom_imports(tmp_path, tool_env):
    broken = tmp_path / 'mmmamba'
    shutil.copytree(REPO / 'mmmamba', broken, ignore=shutil.ignore_patterns('__pycache__'))
    with open(broken / 'models' / 'backbones' / '__init__.py', 'a') as f:
        f.write('\nraise RuntimeError("deliberately broken backbone module")\n')
    tool_env['PYTHONPATH'] = f'{tmp_path}:{tool_env["PYTHONPATH"]}'

    proc = subprocess.run([sys.executable, '-c', 'import mmmamba; print(mmmamba.__file__)'],
                          env=tool_env, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode != 0
    assert 'deliberately broken backbone module' in proc.stderr

    config = tmp_path / 'cfg.py'
    config.write_text("custom_imports = dict(imports=['mmmamba'], allow_failed_imports=False)\n")
    code = f'from mmengine.config import Config; Config.fromfile({str(config)!r})'
    proc = subprocess.run([sys.executable, '-c', code],
                          env=tool_env, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode != 0
    assert 'deliberately broken backbone module' in proc.stderr


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_result(tmp_path, tool_env):
    """SIGKILL a run after its 2nd checkpoint; --resume finishes it like an uninterrupted run."""
    def train_cmd(work_dir, *extra):
        return [sys.executable, 'tools/train.py', str(TOY_VAL_CONFIG), '--work-dir',
                str(work_dir), *extra]

    whole = tmp_path / 'whole'
    _run(train_cmd(whole), tool_env)

    cut = tmp_path / 'cut'
    proc = subprocess.Popen(train_cmd(cut), cwd=REPO, env=tool_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (cut / 'epoch_2.pth').exists() and time.time() < deadline:
        assert proc.poll() is None, 'the run ended before it could be interrupted'
        time.sleep(0.05)
    time.sleep(0.3)  # let the checkpoint be written completely
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (cut / 'epoch_6.pth').exists(), 'the run finished before it was killed'

    log = _run(train_cmd(cut, '--resume'), tool_env)
    resumed = re.search(r'resumed epoch: (\d+), iter: (\d+)', log)
    assert resumed and int(resumed.group(2)) == 8 * int(resumed.group(1))
    final_whole = torch.load(whole / 'epoch_6.pth', map_location='cpu')
    final_cut = torch.load(cut / 'epoch_6.pth', map_location='cpu')
    assert final_cut['meta']['iter'] == final_whole['meta']['iter'] == 48
    assert (final_cut['optimizer']['state'][0]['step'] ==
            final_whole['optimizer']['state'][0]['step'])
    mse = [float(re.findall(r'mse: ([0-9.e+-]+)', p.read_text())[-1])
           for p in (whole, cut) for p in sorted(p.glob('*/*.log'))[-1:]]
    assert len(mse) == 2 and abs(mse[0] - mse[1]) <= 0.05 * mse[0] + 1e-3
    for key, value in final_whole['state_dict'].items():
        torch.testing.assert_close(final_cut['state_dict'][key], value, rtol=1e-4, atol=1e-5)
