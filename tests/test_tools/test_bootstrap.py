"""tools/bootstrap.sh keeps every pin through every pip call, and tools/check_build_env.py names
what breaks the mmcv build before the build starts.

The bootstrap runs for real (bash, its own control flow, tar and sed) against a stub interpreter
that records each call instead of installing anything: a fresh machine failed once because
``pip install torch`` upgraded setuptools past the ``setuptools<81`` that the step before had
installed, and mmcv's setup.py then found no ``pkg_resources``. A pin only survives a later pip
call if that call runs under the constraints file, so that is what the first test checks.
"""
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP = REPO / 'tools' / 'bootstrap.sh'
CHECK_BUILD_ENV = REPO / 'tools' / 'check_build_env.py'
CONSTRAINTS = REPO / 'requirements' / 'constraints.txt'
TORCH_VERSION = '2.14.1'

# Stands in for python3 and for the venv's python. Each call appends one JSON line to
# $STUB_LOG: its argv, its working directory and the PIP_CONSTRAINT it saw.
STUB = textwrap.dedent('''\
    #!{python} -S
    import json, os, shutil, stat, sys, tarfile, io

    argv = sys.argv[1:]
    record = dict(argv=argv, cwd=os.getcwd(), PIP_CONSTRAINT=os.environ.get('PIP_CONSTRAINT'))


    def option(args, name):
        return args[args.index(name) + 1]


    if argv[:2] == ['-m', 'venv']:
        python = os.path.join(argv[2], 'bin', 'python')
        os.makedirs(os.path.dirname(python), exist_ok=True)
        shutil.copy(__file__, python)
        os.chmod(python, os.stat(python).st_mode | stat.S_IEXEC)
    elif argv[:2] == ['-m', 'pip']:
        args = argv[2:]
        sub = next(a for a in args if not a.startswith('-'))
        record['sub'] = sub
        if sub == 'download':  # an sdist whose setup.py asks for C++14, as mmcv 2.1.0's does
            setup = b"extra_compile_args = ['-std=c++14']\\n"
            with tarfile.open(os.path.join(option(args, '-d'), 'mmcv-2.1.0.tar.gz'), 'w:gz') as tar:
                info = tarfile.TarInfo('mmcv-2.1.0/setup.py')
                info.size = len(setup)
                tar.addfile(info, io.BytesIO(setup))
        elif sub == 'wheel':
            with open('setup.py') as f:
                record['setup_py'] = f.read()
            with open(os.path.join(option(args, '-w'), 'mmcv-2.1.0-py3-none-any.whl'), 'wb') as f:
                f.write(b'not a real wheel')
    elif argv[:1] == ['-c']:  # the torch version query
        print('{torch_version}')
    elif argv[:1] and argv[0].endswith('check_build_env.py'):
        pass  # tested on its own below
    elif argv == ['-']:  # the import check, read from a heredoc
        record['stdin'] = sys.stdin.read()
    else:
        record['unexpected'] = True
    with open(os.environ['STUB_LOG'], 'a') as f:
        f.write(json.dumps(record) + '\\n')
    sys.exit(3 if record.get('unexpected') else 0)
''')


def run_bootstrap(script: Path, tmp_path: Path) -> list:
    """Run ``bash script`` with the stub as python3; return the calls the stub recorded."""
    stub = tmp_path / 'python3'
    stub.write_text(STUB.format(python=sys.executable, torch_version=TORCH_VERSION))
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / 'calls.jsonl'
    env = {k: v for k, v in os.environ.items() if not k.startswith('PIP_')}
    tmp = tmp_path / 'tmp'  # the bootstrap unpacks the sdist under mktemp -d
    tmp.mkdir()
    env.update(PYTHON=str(stub), STUB_LOG=str(log), MMMAMBA_VENV=str(tmp_path / 'venv'),
               MMMAMBA_CACHE=str(tmp_path / 'cache'), TMPDIR=str(tmp))
    proc = subprocess.run(['bash', str(script)], env=env, capture_output=True, text=True,
                          timeout=120)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    assert proc.returncode == 0, f'{proc.stdout}\n{proc.stderr}'
    assert not [c for c in calls if c.get('unexpected')], calls
    return calls


def runs_under(call: dict, constraints: Path) -> bool:
    """Whether pip applies ``constraints`` to this call (``-c FILE`` or ``PIP_CONSTRAINT``)."""
    cwd = Path(call['cwd'])
    argv = call['argv']
    files = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ('-c', '--constraint')]
    files += [a.split('=', 1)[1] for a in argv if a.startswith('--constraint=')]
    if call['PIP_CONSTRAINT']:
        files += call['PIP_CONSTRAINT'].split()
    return any((cwd / f).resolve() == constraints.resolve() for f in files)


def pins_of(path: Path) -> set:
    """The ``==`` and ``<`` requirements of a requirements file, normalised."""
    pins = set()
    for line in path.read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        if line and any(spec.operator in ('==', '<') for spec in Requirement(line).specifier):
            pins.add(str(Requirement(line)))
    return pins


@pytest.fixture(scope='module')
def bootstrap_run(tmp_path_factory) -> tuple:
    """``(calls, folder)`` of one cold bootstrap (fresh venv, empty wheel cache) under the stub."""
    folder = tmp_path_factory.mktemp('bootstrap')
    return run_bootstrap(BOOTSTRAP, folder), folder


def test_every_pip_call_of_the_bootstrap_runs_under_the_constraints(bootstrap_run):
    calls, _ = bootstrap_run
    pip_calls = [c for c in calls if c.get('sub') in ('install', 'download', 'wheel')]
    # the cold path: build tools, torch, mmcv download + build + install, stack, mmmamba
    assert [c['sub'] for c in pip_calls].count('install') >= 5
    assert {'download', 'wheel'} <= {c['sub'] for c in pip_calls}
    unconstrained = [' '.join(c['argv']) for c in pip_calls if not runs_under(c, CONSTRAINTS)]
    assert not unconstrained, f'pip calls not under {CONSTRAINTS}: {unconstrained}'

    # what the constraints file must hold: setuptools<81 for mmcv's setup.py, and every exact
    # or upper pin of the requirement files, so that no later step can move them
    constraints = pins_of(CONSTRAINTS)
    wanted = {'setuptools<81'}
    for name in ('torch.txt', 'runtime.txt', 'tests.txt'):
        wanted |= pins_of(REPO / 'requirements' / name)
    assert wanted <= constraints, f'missing from {CONSTRAINTS}: {sorted(wanted - constraints)}'


def test_the_bootstrap_checks_the_build_before_building_and_pins_after_installing(bootstrap_run):
    calls, folder = bootstrap_run
    kinds = []
    for call in calls:
        if call['argv'][0].endswith('check_build_env.py'):
            kinds.append('check --mmcv-build' if '--mmcv-build' in call['argv'] else 'check')
        else:
            kinds.append(call.get('sub', call['argv'][0]))
    assert 'check --mmcv-build' in kinds, kinds
    assert kinds.index('check --mmcv-build') < kinds.index('download'), kinds
    # the torch install (which once moved setuptools) is re-checked before anything else runs
    torch_install = next(i for i, c in enumerate(calls)
                         if c.get('sub') == 'install' and any('torch.txt' in a for a in c['argv']))
    assert kinds[torch_install + 1] == 'check'
    last_install = max(i for i, kind in enumerate(kinds) if kind == 'install')
    assert 'check' in kinds[last_install + 1:]
    # mmcv is built from its sdist with C++14 replaced by the C++20 torch's headers need
    wheel = next(c for c in calls if c.get('sub') == 'wheel')
    assert wheel['setup_py'] == "extra_compile_args = ['-std=c++20']\n"
    assert list((folder / 'venv').glob('.mmmamba-bootstrap-*')), 'no completion stamp'


# --------------------------------------------------------------------------- check_build_env.py
def fake_distribution(site: Path, name: str, version: str, module_source: str) -> None:
    """A package ``name`` that importlib.metadata reports as ``version``."""
    (site / name).mkdir(parents=True)
    (site / name / '__init__.py').write_text(module_source)
    dist_info = site / f'{name}-{version}.dist-info'
    dist_info.mkdir()
    (dist_info / 'METADATA').write_text(
        f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n')


def fake_build_env(tmp_path: Path, setuptools: str = '80.9.0', broken: tuple = ()) -> Path:
    """A PYTHONPATH folder that shadows the interpreter's setuptools, pkg_resources, wheel, ninja
    and torch (a torch whose cpp_extension points at a folder holding torch/extension.h).
    The modules named in ``broken`` raise ImportError when imported."""
    site = tmp_path / 'site'
    for name, version in (('setuptools', setuptools), ('pkg_resources', setuptools),
                          ('wheel', '0.45.1'), ('ninja', '1.13.0')):
        source = f"raise ImportError('no {name} here')\n" if name in broken else ''
        fake_distribution(site, name, version, source)
    include = tmp_path / 'include'
    (include / 'torch').mkdir(parents=True)
    (include / 'torch' / 'extension.h').write_text('')
    (site / 'torch' / 'utils').mkdir(parents=True)
    (site / 'torch' / '__init__.py').write_text('')
    (site / 'torch' / 'utils' / '__init__.py').write_text('')
    (site / 'torch' / 'utils' / 'cpp_extension.py').write_text(
        f'def include_paths():\n    return [{str(include)!r}]\n')
    return site


def run_check(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(site))
    return subprocess.run([sys.executable, str(CHECK_BUILD_ENV), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_check_build_env_names_a_setuptools_without_pkg_resources(tmp_path):
    site = fake_build_env(tmp_path, setuptools='84.2.1', broken=('pkg_resources', ))
    proc = run_check(site, '--constraints', 'requirements/constraints.txt', '--mmcv-build')
    assert proc.returncode == 1, proc.stderr
    problems = proc.stderr.splitlines()
    pin = next(p for p in problems if p.startswith('[check_build_env] setuptools 84.2.1 '))
    assert f'is installed in {site} (interpreter {sys.executable})' in pin
    assert 'but requirements/constraints.txt pins setuptools<81' in pin
    missing = next(p for p in problems if 'pkg_resources' in p)
    assert f"'import pkg_resources' fails in {sys.executable} (no pkg_resources here)" in missing
    assert f'setuptools 84.2.1 is installed in {site}' in missing
    assert missing.endswith(f"Fix: install a setuptools that ships it: {sys.executable} -m pip "
                            "install 'setuptools<81'")
    assert len(problems) == 2, problems  # wheel, ninja, torch and the compiler are fine


def test_check_build_env_passes_a_ready_build_environment(tmp_path):
    site = fake_build_env(tmp_path)
    constraints = tmp_path / 'constraints.txt'
    constraints.write_text('# comment\nsetuptools<81\nnot-installed-here==1.0\n')
    proc = run_check(site, '--constraints', str(constraints), '--mmcv-build')
    assert (proc.returncode, proc.stderr) == (0, '')


@pytest.mark.parametrize('module', ['wheel', 'ninja'])
def test_check_build_env_names_a_missing_build_tool(tmp_path, module):
    site = fake_build_env(tmp_path, broken=(module, ))
    constraints = tmp_path / 'constraints.txt'
    constraints.write_text('setuptools<81\n')
    proc = run_check(site, '--constraints', str(constraints), '--mmcv-build')
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"[check_build_env] '{module}' does not import in {sys.executable} (no {module} here); "
        f'building mmcv needs it. Fix: {sys.executable} -m pip install {module}')
