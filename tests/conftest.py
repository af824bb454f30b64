import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / 'tests' / 'data'


@pytest.fixture
def tool_env() -> dict:
    """Environment for running repo tools in a subprocess with this interpreter first on PATH."""
    env = dict(os.environ)
    env['PATH'] = os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', '')
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (str(TEST_DATA), env.get('PYTHONPATH', '')) if p)
    env.setdefault('OMP_NUM_THREADS', '1')
    return env


@pytest.fixture(autouse=True)
def restore_default_scope():
    """A Runner leaves its default scope (e.g. 'mmengine') set globally; undo that per test."""
    from mmengine.registry import DefaultScope
    saved = dict(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)
