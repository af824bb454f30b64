import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from mmmamba.utils import benchmark

MIB = 2**20


class FakeClock:
    """Stands in for ``time.perf_counter`` and ``time.process_time``; each call of :meth:`work`
    advances the first by the next scripted wall duration and the second by the next CPU
    duration (half the wall one unless scripted), so the timings are known exactly."""

    def __init__(self, durations, cpu_durations=None):
        self.now = self.cpu = 0.0
        self.durations = list(durations)
        self.cpu_durations = list(cpu_durations or [d / 2 for d in durations])
        self.grad_enabled = []

    def perf_counter(self):
        return self.now

    def process_time(self):
        return self.cpu

    def work(self):
        self.grad_enabled.append(torch.is_grad_enabled())
        self.now += self.durations.pop(0)
        self.cpu += self.cpu_durations.pop(0)


def use_clock(monkeypatch, clock):
    monkeypatch.setattr(time, 'perf_counter', clock.perf_counter)
    monkeypatch.setattr(time, 'process_time', clock.process_time)


# The CPU peak is the growth of the resident size, which is only a faithful measure where the
# allocator hands freed blocks back at once: in the benchmark's memory workers (a fresh process
# with MALLOC_MMAP_THRESHOLD_, see run_worker). Inside this long test process glibc's heap keeps
# freed blocks resident and reuses them, and a 64 MiB tensor measured a peak of 0 or 128 MiB
# depending on which earlier test freed what; so the cases run in one such worker.
PEAK_CASES = textwrap.dedent('''
    import gc, json
    import torch
    from mmmamba.utils import benchmark

    MIB = 2**20
    numel = 64 * MIB // 4
    cpu = torch.device('cpu')
    peaks = {}

    def two_in_turn():
        a = torch.ones(numel)  # every page written, so all of it is resident
        del a
        b = torch.ones(numel)
        del b

    peaks['two_in_turn'] = benchmark.measure_peak(two_in_turn, cpu)

    class Cycle:
        def __init__(self, numel):
            self.itself = self
            self.tensor = torch.ones(numel)

    gc.disable()  # keep the cycle alive until the collector is asked to run
    Cycle(3 * numel)

    def collect_then_allocate():
        gc.collect()  # what an automatic collection inside the call would do
        a = torch.ones(numel)
        del a

    peaks['collected_in_call'] = benchmark.measure_peak(collect_then_allocate, cpu)
    gc.enable()
    print(json.dumps(peaks))
''')


@pytest.fixture(scope='module')
def cpu_peaks():
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=benchmark.MEMORY_RUN_MMAP_THRESHOLD)
    proc = subprocess.run([sys.executable, '-c', PEAK_CASES], capture_output=True, text=True,
                          env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_cpu_peak_is_the_largest_resident_growth_during_the_call(cpu_peaks):
    """Two 64 MiB tensors, one after the other: the peak is one of them, not their sum."""
    # Bounds: about one tensor (a few of its pages may already be resident before the call,
    # and the interpreter allocates a little during it), far from both (128 MiB)
    assert 56 * MIB <= cpu_peaks['two_in_turn'] < 96 * MIB


def test_cpu_peak_ignores_garbage_collected_during_the_call(cpu_peaks):
    """A 192 MiB tensor kept only by a reference cycle is resident before the call; if the
    collector freed it inside the call, the resident size would never rise above the base
    (measure_peak collects first)."""
    assert 56 * MIB <= cpu_peaks['collected_in_call'] < 96 * MIB


def test_read_proc_status_names_a_missing_field():
    with pytest.raises(RuntimeError, match='VmNoSuchField not in /proc/self/status'):
        benchmark.read_proc_status('VmNoSuchField')


def test_time_best_of_keeps_the_shortest_wall_and_cpu_time_independently(monkeypatch):
    # the run with the shortest wall time (the second) is not the one with the least CPU time
    clock = FakeClock([3.0, 1.0, 2.0], cpu_durations=[1.5, 0.75, 0.5])
    use_clock(monkeypatch, clock)
    wall, cpu, runs = benchmark.time_best_of(clock.work, 3, torch.device('cpu'), grad=False)
    assert (wall, cpu, runs) == (1.0, 0.5, 3)
    assert clock.grad_enabled == [False, False, False]


def test_time_best_of_cpu_time_leaves_out_waiting():
    """A sleeping process uses no CPU: the wall time of a sleep is at least its length and its
    CPU time less than that (what separates the two columns on a loaded machine)."""
    wall, cpu, runs = benchmark.time_best_of(lambda: time.sleep(0.2), 1, torch.device('cpu'),
                                             grad=False)
    assert runs == 1 and wall >= 0.2 and 0 <= cpu < 0.2


@pytest.mark.parametrize('budget, expected', [(3.5, (1.0, 0.5, 2)), (2.0, (3.0, 1.5, 1)),
                                              (10.0, (1.0, 0.5, 3))])
def test_time_best_of_stops_when_the_budget_of_wall_time_is_spent(monkeypatch, budget, expected):
    clock = FakeClock([3.0, 1.0, 2.0])
    use_clock(monkeypatch, clock)
    assert benchmark.time_best_of(clock.work, 3, torch.device('cpu'), grad=True,
                                  budget_s=budget) == expected
    assert all(clock.grad_enabled)


def test_time_best_of_rejects_no_runs():
    with pytest.raises(ValueError, match='repeat must be at least 1, got 0'):
        benchmark.time_best_of(lambda: None, 0, torch.device('cpu'), grad=False)


@pytest.mark.parametrize('repeat, backward_calls', [(1, 1), (3, 4)])
def test_time_forward_backward_warms_up_only_when_repeating(monkeypatch, repeat, backward_calls):
    forward_clock = FakeClock([0.5, 0.25, 0.75])
    backward_clock = FakeClock([9.0, 2.0, 1.5, 3.0])  # the first one is the warm-up when repeating
    monkeypatch.setattr(time, 'perf_counter', lambda: forward_clock.now + backward_clock.now)
    monkeypatch.setattr(time, 'process_time', lambda: forward_clock.cpu + backward_clock.cpu)
    result = benchmark.time_forward_backward(forward_clock.work, backward_clock.work, repeat,
                                             torch.device('cpu'))
    assert len(backward_clock.grad_enabled) == backward_calls
    if repeat == 1:
        assert result == dict(fwd=0.5, fwd_bwd=9.0, fwd_cpu=0.25, fwd_bwd_cpu=4.5, fwd_runs=1,
                              fwd_bwd_runs=1)
    else:
        assert result == dict(fwd=0.25, fwd_bwd=1.5, fwd_cpu=0.125, fwd_bwd_cpu=0.75,
                              fwd_runs=3, fwd_bwd_runs=3)
    assert forward_clock.grad_enabled == [False] * repeat


WORKER = textwrap.dedent('''
    import json, os, sys
    spec = json.loads(sys.argv[2])
    if spec.get('fail'):
        sys.exit('worker could not measure ' + spec['case'])
    print('a line before the result')
    print(json.dumps(dict(measure=spec['measure'], case=spec['case'],
                          threshold=os.environ.get('MALLOC_MMAP_THRESHOLD_'))))
''')


def test_run_worker_sets_the_allocator_threshold_for_memory_runs_only(tmp_path, monkeypatch):
    script = tmp_path / 'worker.py'
    script.write_text(WORKER)
    monkeypatch.delenv('MALLOC_MMAP_THRESHOLD_', raising=False)
    memory, error = benchmark.run_worker(str(script), dict(case='a'), 'memory')
    assert (memory, error) == (dict(measure='memory', case='a', threshold='65536'), '')
    timed, error = benchmark.run_worker(str(script), dict(case='a'), 'time')
    assert (timed, error) == (dict(measure='time', case='a', threshold=None), '')


def test_run_worker_returns_the_error_of_a_failed_worker(tmp_path):
    script = tmp_path / 'worker.py'
    script.write_text(WORKER)
    result, error = benchmark.run_worker(str(script), dict(case='b', fail=True), 'time')
    assert result is None
    assert 'worker could not measure b' in error
    with pytest.raises(ValueError, match="measure must be 'memory' or 'time', got 'speed'"):
        benchmark.run_worker(str(script), dict(case='b'), 'speed')


def test_environment_line_names_threads_and_load():
    line = benchmark.environment_line('cpu', 1)
    assert line.startswith(f'torch {torch.__version__}, device cpu, threads 1, cpus ')
    assert '\n' not in line and 'load average ' in line
