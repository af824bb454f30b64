"""tools/test.py keeps every metric, tables and arrays included, in test_metrics.json.

It once wrote ``float(v)`` of each metric, so a per-class list (mmpretrain's precision with
``average=None``) or an array crashed the run after evaluation and the results were lost.
"""
import importlib.util
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
TOY_CONFIG = REPO / 'tests' / 'data' / 'toy_regression_config.py'


def _load_test_tool():
    spec = importlib.util.spec_from_file_location('mmmamba_test_tool', REPO / 'tools' / 'test.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# A metric of the toy regressor that reports what real evaluators report besides scalars.
PER_CLASS_METRIC = textwrap.dedent('''\
    import numpy as np
    import torch
    from mmengine.evaluator import BaseMetric
    from mmengine.registry import METRICS


    @METRICS.register_module(name='MMMambaTestTableMetric', force=True)
    class TableMetric(BaseMetric):

        def process(self, data_batch, data_samples):
            self.results.extend(float(p) for p in torch.stack(list(data_samples)).flatten())

        def compute_metrics(self, results):
            return {
                'num_samples': len(results),
                'precision_classwise': [0.5, 0.25, float('nan')],
                'confusion': np.array([[3, 1], [0, 4]]),
                'per_class': {'circle': np.float32(0.75), 'square': torch.tensor(0.5)},
            }
''')


def test_non_scalar_metrics_reach_test_metrics_json(tmp_path, tool_env):
    (tmp_path / 'table_metric.py').write_text(PER_CLASS_METRIC)
    config = tmp_path / 'config.py'
    config.write_text(textwrap.dedent(f'''\
        _base_ = {str(TOY_CONFIG)!r}
        custom_imports = dict(imports=['toy_modules', 'table_metric'],
                              allow_failed_imports=False)
        test_dataloader = dict(
            dataset=dict(type='MMMambaTestDataset', length=6),
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate'),
            batch_size=4,
            num_workers=0)
        test_evaluator = dict(type='MMMambaTestTableMetric')
        test_cfg = dict()
    '''))
    sys.path.insert(0, str(REPO / 'tests' / 'data'))
    try:
        from toy_modules import Regressor
    finally:
        sys.path.remove(str(REPO / 'tests' / 'data'))
    checkpoint = tmp_path / 'regressor.pth'
    torch.save(dict(meta=dict(), state_dict=Regressor().state_dict()), checkpoint)
    tool_env['PYTHONPATH'] = f'{tmp_path}:{tool_env["PYTHONPATH"]}'
    proc = subprocess.run(
        [sys.executable, 'tools/test.py', str(config), str(checkpoint), '--work-dir',
         str(tmp_path / 'work')], cwd=REPO, env=tool_env, capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, f'{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    # strict JSON: NaN is written as null
    metrics = json.loads((tmp_path / 'work' / 'test_metrics.json').read_text(),
                         parse_constant=reject_constant)
    assert metrics == {
        'num_samples': 6,
        'precision_classwise': [0.5, 0.25, None],
        'confusion': [[3, 1], [0, 4]],
        'per_class': {'circle': 0.75, 'square': 0.5},
    }


def reject_constant(name: str):
    raise AssertionError(f'test_metrics.json holds {name}, which strict JSON does not allow')


def test_metric_to_json_keeps_mmpretrain_per_class_precision():
    from mmpretrain.evaluation import SingleLabelMetric
    from mmpretrain.structures import DataSample

    tool = _load_test_tool()
    metric = SingleLabelMetric(items=('precision', 'recall'), average=None, num_classes=3)
    # predictions 0, 1, 1, 2 for labels 0, 1, 2, 2
    samples = [DataSample().set_pred_score(torch.eye(3)[pred]).set_gt_label(label)
               for pred, label in ((0, 0), (1, 1), (1, 2), (2, 2))]
    metric.process(None, [s.to_dict() for s in samples])
    results = metric.evaluate(len(samples))
    as_json = {k: tool.metric_to_json(v, k) for k, v in results.items()}
    # precision per class: TP / predicted = 1/1, 1/2, 1/1; recall: TP / actual = 1/1, 1/1, 1/2
    expected = {'single-label/precision_classwise': [100.0, 50.0, 100.0],
                'single-label/recall_classwise': [100.0, 100.0, 50.0]}
    assert set(as_json) == set(expected)
    for key, values in expected.items():
        assert len(as_json[key]) == 3
        assert all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(as_json[key], values)), key
    json.dumps(as_json, allow_nan=False)  # writable as strict JSON


def test_metric_to_json_converts_each_kind_of_value():
    tool = _load_test_tool()
    assert tool.metric_to_json(np.float64(0.5), 'x') == 0.5
    assert tool.metric_to_json(np.int64(3), 'x') == 3
    assert tool.metric_to_json(torch.tensor([[1., float('inf')]]), 'x') == [[1.0, None]]
    assert tool.metric_to_json(('a', True, None), 'x') == ['a', True, None]
    assert tool.metric_to_json({1: float('nan')}, 'x') == {'1': None}
    assert tool.metric_to_json(Path('/tmp/preds'), 'x') == '/tmp/preds'  # str(), with a warning
