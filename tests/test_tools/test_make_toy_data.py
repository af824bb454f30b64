"""Tests for tools/dataset_converters/make_toy_data.py: format, agreement, determinism, loading."""
import contextlib
import importlib.util
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

TOOL = Path(__file__).resolve().parents[2] / 'tools' / 'dataset_converters' / 'make_toy_data.py'


def _load_tool():
    spec = importlib.util.spec_from_file_location('make_toy_data', TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


toy = _load_tool()


def _quiet_coco(ann_file):
    from pycocotools.coco import COCO
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(ann_file))


def _morph(mask: np.ndarray, steps: int, combine) -> np.ndarray:
    """Erode (combine=np.logical_and) or dilate (np.logical_or) a bool mask [H, W], 4-connected."""
    out = mask.copy()
    for _ in range(steps):
        padded = np.pad(out, 1, constant_values=False)
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            out = combine(out, padded[1 + dy:padded.shape[0] - 1 + dy,
                                      1 + dx:padded.shape[1] - 1 + dx])
    return out


def _tree(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob('*')) if p.is_file()}


@pytest.fixture(scope='module')
def coco_set(tmp_path_factory):
    return toy.make_coco(tmp_path_factory.mktemp('toy'), num_train=16, num_val=8,
                         image_size=128, seed=0)


@pytest.fixture(scope='module')
def ade_set(tmp_path_factory):
    return toy.make_ade(tmp_path_factory.mktemp('toy'), num_train=12, num_val=8,
                        image_size=96, seed=0)


@pytest.fixture(scope='module')
def imagenet_set(tmp_path_factory):
    return toy.make_imagenet(tmp_path_factory.mktemp('toy'), train_per_class=6,
                             val_per_class=3, image_size=48, seed=0)


# --------------------------------------------------------------------------- COCO
@pytest.mark.parametrize('split', ['train', 'val'])
def test_coco_annotations_agree_with_masks_and_pixels(coco_set, split):
    from pycocotools import mask as mask_utils
    coco = _quiet_coco(coco_set.paths[f'{split}_ann_file'])
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(toy.COCO_CLASSES)
    assert coco.getCatIds() == [1, 2, 3]
    assert len(coco.getImgIds()) == coco_set.counts[split]
    seen_classes = set()
    for image_id in coco.getImgIds():
        info = coco.loadImgs(image_id)[0]
        path = coco_set.paths[f'{split}_images'] / info['file_name']
        image = np.asarray(Image.open(path).convert('RGB'), dtype=np.float32)
        assert image.shape == (info['height'], info['width'], 3)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        assert 1 <= len(anns) <= 3
        union = np.zeros(image.shape[:2], bool)
        for ann in anns:
            mask = coco.annToMask(ann).astype(bool)
            assert ann['iscrowd'] == 0
            assert mask.sum() == ann['area'] > 0
            assert list(mask_utils.toBbox(coco.annToRLE(ann))) == ann['bbox']
            x, y, w, h = map(int, ann['bbox'])
            assert mask[y, x:x + w].any() and mask[y + h - 1, x:x + w].any()
            assert mask[y:y + h, x].any() and mask[y:y + h, x + w - 1].any()
            assert not (union & mask).any(), 'objects must not overlap'
            union |= mask
            # The shape was painted through its mask: inside is one solid colour, far from
            # the background right around it.
            inside = image[_morph(mask, 2, np.logical_and)]
            ring = image[_morph(mask, 4, np.logical_or) & ~_morph(mask, 2, np.logical_or)]
            assert inside.std(axis=0).max() < 25
            assert np.linalg.norm(inside.mean(0) - ring.mean(0)) > 60
            seen_classes.add(ann['category_id'])
    assert seen_classes == {1, 2, 3}


@pytest.mark.parametrize('iou_type', ['bbox', 'segm'])
def test_coco_ground_truth_as_detections_scores_ap_one(coco_set, iou_type):
    from pycocotools.cocoeval import COCOeval
    coco = _quiet_coco(coco_set.paths['val_ann_file'])

    def evaluate(category_of):
        detections = []
        for ann in coco.loadAnns(coco.getAnnIds()):
            det = dict(image_id=ann['image_id'], category_id=category_of(ann['category_id']),
                       score=1.0)
            if iou_type == 'bbox':
                det['bbox'] = ann['bbox']
            else:
                det['segmentation'] = coco.annToRLE(ann)
            detections.append(det)
        with contextlib.redirect_stdout(io.StringIO()):
            result = coco.loadRes(detections)
            evaluator = COCOeval(coco, result, iou_type)
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        return evaluator.stats

    stats = evaluate(lambda category: category)
    assert stats[0] == pytest.approx(1.0)  # AP @ IoU 0.50:0.95
    assert stats[1] == pytest.approx(1.0)  # AP @ IoU 0.50
    # The same detections under the wrong class score far lower: the metric is not vacuous.
    assert evaluate(lambda category: category % 3 + 1)[0] < 0.5


def test_coco_loads_with_mmdet(coco_set):
    from mmcv.transforms import LoadImageFromFile
    from mmdet.datasets import CocoDataset
    from mmdet.datasets.transforms import LoadAnnotations
    dataset = CocoDataset(
        data_root=str(coco_set.root), ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'), metainfo=coco_set.metainfo(),
        pipeline=[LoadImageFromFile(), LoadAnnotations(with_bbox=True, with_mask=True)])
    coco = _quiet_coco(coco_set.paths['val_ann_file'])
    assert len(dataset) == coco_set.counts['val']
    for index in range(len(dataset)):
        results = dataset[index]
        anns = coco.loadAnns(coco.getAnnIds(imgIds=results['img_id']))
        assert results['img'].shape == (128, 128, 3)
        assert results['gt_bboxes_labels'].tolist() == [a['category_id'] - 1 for a in anns]
        np.testing.assert_allclose(
            results['gt_bboxes'].numpy(),
            [[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in anns)])
        np.testing.assert_array_equal(results['gt_masks'].masks,
                                      np.stack([coco.annToMask(a) for a in anns]))


# --------------------------------------------------------------------------- ADE20K
# mmseg's own ADE20K config passes reduce_zero_label=True to LoadAnnotations too, which warns.
@pytest.mark.filterwarnings('ignore:`reduce_zero_label` will be deprecated')
def test_ade_loads_with_mmseg_ade20k_dataset(ade_set):
    from mmcv.transforms import LoadImageFromFile
    from mmseg.datasets import ADE20KDataset
    from mmseg.datasets.transforms import LoadAnnotations, PackSegInputs
    num_classes = len(toy.ADE_CLASSES)
    ids_per_split = {}
    for split, folder in (('train', 'training'), ('val', 'validation')):
        dataset = ADE20KDataset(
            data_root=str(ade_set.root),
            data_prefix=dict(img_path=f'images/{folder}', seg_map_path=f'annotations/{folder}'),
            metainfo=ade_set.metainfo(),
            pipeline=[LoadImageFromFile(), LoadAnnotations(reduce_zero_label=True),
                      PackSegInputs()])
        assert len(dataset) == ade_set.counts[split]
        assert tuple(dataset.metainfo['classes']) == toy.ADE_CLASSES
        assert [dataset.label_map[i] for i in range(num_classes)] == list(range(num_classes))
        ids = set()
        for index in range(len(dataset)):
            sample = dataset[index]
            seg = sample['data_samples'].gt_sem_seg.data.numpy()[0]
            assert sample['inputs'].shape == (3, *seg.shape)
            raw = np.asarray(Image.open(dataset.get_data_info(index)['seg_map_path']))
            assert raw.max() <= num_classes
            np.testing.assert_array_equal(seg, np.where(raw == 0, 255, raw.astype(int) - 1))
            ids |= set(np.unique(seg).tolist()) - {255}
        ids_per_split[split] = ids
    assert ids_per_split['train'] == ids_per_split['val'] == set(range(num_classes))


# --------------------------------------------------------------------------- ImageNet
def test_imagenet_loads_with_mmpretrain(imagenet_set):
    from mmcv.transforms import LoadImageFromFile
    from mmpretrain.datasets import CustomDataset, ImageNet
    from mmpretrain.datasets.transforms import PackInputs
    num_classes = len(toy.IMAGENET_CLASSES)
    # Folder scan: classes come from the sub-folder names.
    scanned = CustomDataset(data_root=str(imagenet_set.root), data_prefix='train')
    assert tuple(scanned.CLASSES) == toy.IMAGENET_CLASSES
    assert len(scanned) == imagenet_set.counts['train'] == 6 * num_classes
    # ImageNet with split= reads meta/val.txt by itself.
    dataset = ImageNet(data_root=str(imagenet_set.root), split='val',
                       metainfo=dict(classes=toy.IMAGENET_CLASSES),
                       pipeline=[LoadImageFromFile(), PackInputs()])
    assert len(dataset) == imagenet_set.counts['val'] == 3 * num_classes
    labels = []
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        assert toy.IMAGENET_CLASSES[info['gt_label']] == Path(info['img_path']).parent.name
        labels.append(int(info['gt_label']))
    assert sorted(set(labels)) == list(range(num_classes))
    sample = dataset[0]
    assert tuple(sample['inputs'].shape) == (3, 48, 48)
    assert int(sample['data_samples'].gt_label) == labels[0]


# --------------------------------------------------------------------------- determinism
def _make_all(out_dir, seed, coco_val=2):
    toy.make_coco(out_dir, num_train=3, num_val=coco_val, image_size=96, seed=seed)
    toy.make_ade(out_dir, num_train=2, num_val=2, image_size=64, seed=seed)
    toy.make_imagenet(out_dir, train_per_class=2, val_per_class=1, image_size=32, seed=seed)


def test_same_seed_gives_identical_bytes_other_seed_differs(tmp_path):
    _make_all(tmp_path / 'a', seed=3)
    _make_all(tmp_path / 'b', seed=3)
    _make_all(tmp_path / 'c', seed=4)
    first, second, other = (_tree(tmp_path / name) for name in 'abc')
    assert len(first) > 10 and first == second
    assert first.keys() == other.keys()
    differing = {name for name in first if first[name] != other[name]}
    assert 'coco/annotations/instances_train2017.json' in differing
    for prefix in ('coco/train2017/', 'ade/annotations/training/', 'imagenet/train/'):
        assert any(name.startswith(prefix) for name in differing), prefix


def test_one_split_size_leaves_the_other_split_unchanged(tmp_path):
    _make_all(tmp_path / 'a', seed=0, coco_val=2)
    _make_all(tmp_path / 'b', seed=0, coco_val=3)
    first, second = _tree(tmp_path / 'a' / 'coco'), _tree(tmp_path / 'b' / 'coco')
    train = [name for name in first if name.startswith('train2017/')]
    assert train and all(first[name] == second[name] for name in train)
    assert len([n for n in second if n.startswith('val2017/')]) == 3


# --------------------------------------------------------------------------- idempotence, CLI
def test_rerun_skips_matching_stamp_and_regenerates_otherwise(tmp_path):
    kwargs = dict(train_per_class=2, val_per_class=1, image_size=32, seed=0)
    assert toy.make_imagenet(tmp_path, **kwargs).generated
    stamp = tmp_path / 'imagenet' / toy.STAMP_NAME
    assert json.loads(stamp.read_text())['seed'] == 0
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / 'imagenet').rglob('*')}

    again = toy.make_imagenet(tmp_path, **kwargs)
    assert not again.generated
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / 'imagenet').rglob('*')} == before

    bigger = toy.make_imagenet(tmp_path, **{**kwargs, 'train_per_class': 3})
    assert bigger.generated
    assert len((bigger.paths['train_ann_file']).read_text().splitlines()) == 3 * 4
    assert toy.make_imagenet(tmp_path, **{**kwargs, 'train_per_class': 3}, force=True).generated


def test_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path):
    foreign = tmp_path / 'coco' / 'annotations' / 'instances_train2017.json'
    foreign.parent.mkdir(parents=True)
    foreign.write_text('{"real": "data"}')
    with pytest.raises(FileExistsError, match='refusing to overwrite'):
        toy.make_coco(tmp_path, num_train=1, num_val=1, image_size=64, force=True)
    assert foreign.read_text() == '{"real": "data"}'


def test_cli_prints_where_it_wrote_and_skips_on_rerun(tmp_path, capsys):
    argv = ['--out', str(tmp_path), '--kinds', 'imagenet', 'ade', '--seed', '5',
            '--imagenet-train', '1', '--imagenet-val', '1', '--imagenet-size', '32',
            '--ade-train', '1', '--ade-val', '1', '--ade-size', '32']
    infos = toy.main(argv)
    out = capsys.readouterr().out
    assert [info.kind for info in infos] == ['ade', 'imagenet']
    assert 'coco' not in out and out.count(': generated:') == 2
    assert str(tmp_path / 'imagenet' / 'meta' / 'train.txt') in out
    assert str(tmp_path / 'ade' / 'annotations' / 'validation') in out
    assert all(not info.generated for info in toy.main(argv))
    assert capsys.readouterr().out.count('up to date') == 2


# the detection and segmentation toys (the classification ones use the ImageNet folder's classes)
TOY_CONFIGS = sorted(p for p in (TOOL.parents[2] / 'configs' / 'toy').glob('*.py')
                     if p.stem.startswith(('mask_rcnn_', 'upernet_')))


@pytest.mark.parametrize('config', TOY_CONFIGS, ids=[p.stem for p in TOY_CONFIGS])
def test_toy_configs_use_the_generators_classes_and_palette(config):
    """The toy configs copy the generator's class names and palette; a drifted copy draws
    predictions in colours the data does not use (as the Mask R-CNN one once did)."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(config))
    kind = {'mmdet': 'COCO', 'mmseg': 'ADE'}[cfg.default_scope]
    classes, palette = getattr(toy, f'{kind}_CLASSES'), getattr(toy, f'{kind}_PALETTE')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        metainfo = cfg[loader].dataset.metainfo
        assert tuple(metainfo.classes) == classes, (loader, metainfo.classes)
        assert [tuple(c) for c in metainfo.palette] == list(palette), (loader, metainfo.palette)
