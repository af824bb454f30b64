"""The main job on toy data: generate data, train, evaluate, draw predictions, report.

    python tools/demo.py                    # Mask R-CNN + MambaOut on toy COCO (bbox/segm mAP)
    python tools/demo.py --task seg         # UperNet + MambaOut on toy ADE20K (mIoU)
    python tools/demo.py --model vmamba     # the same with a VMamba backbone (--task det|seg)
    python tools/demo.py --model vim        # the same with a Vim backbone (--task det|seg)

Every step runs the repository's own tools (make_toy_data.py, train.py, test.py) with the toy
configs in configs/toy/, which inherit the real COCO / ADE20K configs.
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TASKS = {
    'det': dict(
        data_args=['--kinds', 'coco', '--coco-size', '128'],
        metrics=('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50')),
    'seg': dict(
        data_args=['--kinds', 'ade'],
        metrics=('mIoU', 'mAcc', 'aAcc')),
}
# The toy config of each (backbone family, task).
CONFIGS = {
    ('mambaout', 'det'): 'configs/toy/mask_rcnn_mambaout_femto_toy.py',
    ('mambaout', 'seg'): 'configs/toy/upernet_mambaout_femto_toy.py',
    ('vmamba', 'det'): 'configs/toy/mask_rcnn_vmamba_toy.py',
    ('vmamba', 'seg'): 'configs/toy/upernet_vmamba_toy.py',
    ('vim', 'det'): 'configs/toy/mask_rcnn_vim_toy.py',
    ('vim', 'seg'): 'configs/toy/upernet_vim_toy.py',
}
MODELS = sorted({model for model, _ in CONFIGS})


def default_work_dir(task: str, model: str) -> str:
    """work_dirs/demo_<task> for MambaOut (the original demo), demo_<task>_<model> otherwise."""
    name = f'demo_{task}' if model == 'mambaout' else f'demo_{task}_{model}'
    return osp.join('work_dirs', name)


def run(step: str, cmd: list) -> None:
    print(f'\n[demo] {step}: {" ".join(cmd)}', flush=True)
    proc = subprocess.run(cmd, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f'[demo] step "{step}" failed with exit code {proc.returncode}')


def latest_checkpoint(work_dir: str) -> str:
    last = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(last):
        raise FileNotFoundError(f'training wrote no checkpoint: {last} is missing')
    with open(last) as f:
        return f.read().strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--task', choices=sorted(TASKS), default='det')
    parser.add_argument('--model', choices=MODELS, default='mambaout', help='backbone family')
    parser.add_argument(
        '--work-dir',
        help='defaults to work_dirs/demo_<task> (mambaout) or work_dirs/demo_<task>_<model>')
    parser.add_argument('--data-root', default='data/toy', help='where the toy data goes')
    parser.add_argument(
        '--cfg-options', nargs='+', default=[], help='passed on to train.py and test.py')
    args = parser.parse_args()
    task = TASKS[args.task]
    config = CONFIGS[(args.model, args.task)]
    work_dir = args.work_dir or default_work_dir(args.task, args.model)
    py = sys.executable
    start = time.time()

    run('generate toy data',
        [py, 'tools/dataset_converters/make_toy_data.py', '--out', args.data_root, *task['data_args']])
    os.environ['TOY_COCO_ROOT'] = osp.join(args.data_root, 'coco') + '/'
    os.environ['TOY_ADE_ROOT'] = osp.join(args.data_root, 'ade') + '/'
    cfg_opts = ['--cfg-options', *args.cfg_options] if args.cfg_options else []
    run('train', [py, 'tools/train.py', config, '--work-dir', work_dir, *cfg_opts])
    checkpoint = latest_checkpoint(work_dir)
    show_dir = 'predictions'
    test_start = time.time()
    run('evaluate and draw predictions', [
        py, 'tools/test.py', config, checkpoint, '--work-dir', work_dir, '--show-dir',
        show_dir, *cfg_opts
    ])

    with open(osp.join(work_dir, 'test_metrics.json')) as f:
        metrics = json.load(f)
    # this run's overlays only: a reused work dir keeps those of earlier runs in older
    # timestamped folders
    pictures = sorted(
        path for ext in ('png', 'jpg')
        for path in glob.glob(osp.join(work_dir, '**', show_dir, '**', f'*.{ext}'), recursive=True)
        if osp.getmtime(path) >= test_start)
    print('\n[demo] finished in %.1f min' % ((time.time() - start) / 60))
    print(f'[demo] logs and checkpoints: {work_dir}')
    print(f'[demo] checkpoint evaluated: {checkpoint}')
    print(f'[demo] {len(pictures)} prediction overlays, e.g. '
          f'{osp.dirname(pictures[0]) if pictures else "(none found)"}')
    for key in task['metrics']:
        if key in metrics:
            print(f'[demo] {key} = {metrics[key]:.3f}')
    if not pictures:
        sys.exit('[demo] no prediction overlays were written')


if __name__ == '__main__':
    main()
