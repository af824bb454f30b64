"""Generate small, learnable toy datasets in the real COCO / ADE20K / ImageNet layouts.

The sets let a newcomer train Mask R-CNN, UperNet and a classifier on a CPU in minutes with no
download, while every file is in the format the real dataset uses, so the same configs (with
another ``data_root``) run on the real data.

Usage::

    python tools/dataset_converters/make_toy_data.py                  # all three under data/toy
    python tools/dataset_converters/make_toy_data.py --kinds coco --seed 1 --coco-train 400
    python tools/dataset_converters/make_toy_data.py --force          # regenerate regardless

Layout written under ``--out`` (default ``data/toy``)::

    coco/train2017/000000000001.png ...          RGB PNG, image_size x image_size
    coco/val2017/000001000001.png ...
    coco/annotations/instances_{train2017,val2017}.json
    ade/images/{training,validation}/ADE_{train,val}_00000001.jpg
    ade/annotations/{training,validation}/ADE_{train,val}_00000001.png   uint8 label maps
    imagenet/{train,val}/<class_name>/<class_name>_00000.jpg
    imagenet/meta/{train,val}.txt                "<class_name>/<file>.jpg <label>" per line

Contents:

* COCO instance segmentation, classes ``COCO_CLASSES`` = ('circle', 'square', 'triangle'),
  category ids 1..3. Each image holds 1-3 non-overlapping solid shapes on a dull, mottled, noisy
  background. Every mask is a polygon rasterised with pycocotools (the routine ``annToMask`` and
  mmdet's ``LoadAnnotations`` use) and the shape is painted through that very mask, so the
  annotation agrees with the pixels; ``bbox`` and ``area`` are measured on the mask.
* ADE20K semantic segmentation, classes ``ADE_CLASSES`` = the first five ADE20K classes
  ('wall', 'building', 'sky', 'floor', 'tree') with ADE's palette. A label map stores 0 for
  "other" (small clutter blobs, ignored) and 1..5 for the classes, exactly as real ADE20K does,
  so ``reduce_zero_label=True`` turns them into 0..4 with 255 ignored. Because the names are the
  first five of mmseg's ``ADE20KDataset.METAINFO``, its label map for
  ``metainfo=dict(classes=ADE_CLASSES, palette=ADE_PALETTE)`` is the identity on 0..4 (a class
  name outside ADE's 150 would make ``ADE20KDataset`` raise), and the same files also load with
  ``BaseSegDataset(reduce_zero_label=True)``. ``ADE20KDataset`` defaults to
  ``reduce_zero_label=True``.
* ImageNet classification, classes ``IMAGENET_CLASSES`` = ('circle', 'square', 'star',
  'triangle'), one shape per image. The names are sorted, so the labels found by scanning the
  folders (mmpretrain ``CustomDataset`` without ``ann_file``) equal those in ``meta/*.txt``.

By default an object's hue is tied to its class (with jitter) on top of the shape, which keeps
the sets learnable in a few CPU minutes; ``--shape-only`` draws random hues so the shape is the
only cue.

Determinism: image ``i`` of a split is drawn from ``numpy.random.default_rng([seed, kind, split,
i])``, so the same seed gives byte-identical files and changing one split's size leaves the
other split's images unchanged.

Idempotence: each set's folder gets a stamp ``.toy_data_stamp.json`` (generator version, seed,
sizes) written last. A run whose stamp matches skips that set; a different stamp (or
``--force``) deletes the folder and regenerates it. A non-empty folder without a stamp is never
touched: the run stops with an error instead, so real data is never overwritten.

Requires numpy and Pillow; the COCO set also needs pycocotools.
"""
import argparse
import colorsys
import json
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

#: Bump when the drawing code changes, so old stamps no longer match.
TOY_DATA_VERSION = 2
STAMP_NAME = '.toy_data_stamp.json'

#: COCO category names; category id = index + 1. Use ``metainfo=dict(classes=COCO_CLASSES)``.
COCO_CLASSES: Tuple[str, ...] = ('circle', 'square', 'triangle')
#: RGB colours for drawing predictions, one per COCO class.
COCO_PALETTE: Tuple[Tuple[int, int, int], ...] = ((220, 20, 60), (0, 170, 0), (30, 90, 230))
#: ADE20K class names: the first five of ADE20K's 150, in ADE's order.
ADE_CLASSES: Tuple[str, ...] = ('wall', 'building', 'sky', 'floor', 'tree')
#: ADE20K's own palette for those classes.
ADE_PALETTE: Tuple[Tuple[int, int, int], ...] = ((120, 120, 120), (180, 120, 120), (6, 230, 230),
                                                 (80, 50, 50), (4, 200, 3))
#: ImageNet-layout class names (sorted, so folder scanning gives the same labels).
IMAGENET_CLASSES: Tuple[str, ...] = ('circle', 'square', 'star', 'triangle')

# Hue (0..1) an object of a class is drawn with when colour is tied to class.
_CLASS_HUES = {'circle': 0.0, 'square': 0.33, 'star': 0.14, 'triangle': 0.62}
# Circumradius of each shape divided by half its nominal size (its width when upright).
_RADIUS_FACTOR = {'circle': 1.0, 'square': np.sqrt(2.0), 'triangle': 2.0 / np.sqrt(3.0),
                  'star': 1.0}
# Stable integers that seed the per-image generators.
_KIND_IDS = {'coco': 1, 'ade': 2, 'imagenet': 3}
_SPLIT_IDS = {'train': 0, 'val': 1}
KINDS = ('coco', 'ade', 'imagenet')


@dataclass(frozen=True)
class ToyDataInfo:
    """What one generator call produced (or found up to date).

    Args:
        kind (str): 'coco', 'ade' or 'imagenet'.
        root (Path): The set's folder, e.g. ``data/toy/coco``; use it as ``data_root``.
        classes (tuple[str]): Class names in label order.
        palette (tuple): One RGB triple per class.
        paths (dict[str, Path]): Named folders and files of the set (absolute or as given).
        counts (dict[str, int]): Number of images per split.
        generated (bool): False when a matching stamp made the call skip generation.
    """
    kind: str
    root: Path
    classes: Tuple[str, ...]
    palette: Tuple[Tuple[int, int, int], ...]
    paths: Dict[str, Path] = field(default_factory=dict)
    counts: Dict[str, int] = field(default_factory=dict)
    generated: bool = True

    def metainfo(self) -> dict:
        """``metainfo`` for an OpenMMLab dataset config."""
        return dict(classes=self.classes, palette=[list(c) for c in self.palette])

    def describe(self) -> List[str]:
        """Human-readable lines saying where the set lives."""
        counts = ', '.join(f'{n} {split}' for split, n in self.counts.items())
        state = 'generated' if self.generated else 'up to date, skipped (use --force to redo)'
        lines = [f'[toy-data] {self.kind}: {state}: {counts} images in {self.root}']
        lines += [f'    {name:<16} {path}' for name, path in self.paths.items()]
        lines.append(f'    {"classes":<16} {self.classes}')
        return lines


# --------------------------------------------------------------------------- drawing helpers
def _rng(seed: int, kind: str, split: str, *index: int) -> np.random.Generator:
    return np.random.default_rng([seed, _KIND_IDS[kind], _SPLIT_IDS[split], *index])


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32) * 255.0


def _smooth_noise(rng: np.random.Generator, height: int, width: int,
                  cells: int) -> np.ndarray:
    """Low-frequency noise in about [-1, 1], shape [H, W]: a coarse grid upsampled bicubically."""
    coarse = rng.uniform(-1.0, 1.0, size=(cells, cells)).astype(np.float32)
    field_img = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(field_img, dtype=np.float32)


def _texture(rng: np.random.Generator, height: int, width: int, rgb: np.ndarray,
             mottle: float, grain: float, cells: int = 6) -> np.ndarray:
    """A colour with mottling and per-pixel grain, shape [H, W, 3] float32."""
    mottling = _smooth_noise(rng, height, width, cells)[..., None] * mottle
    noise = rng.normal(0.0, grain, size=(height, width, 3)).astype(np.float32)
    return rgb[None, None, :] + mottling + noise


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Dull, dark-to-mid, mottled and noisy background, shape [H, W, 3] float32."""
    rgb = _hsv(rng.uniform(), rng.uniform(0.05, 0.25), rng.uniform(0.3, 0.55))
    img = _texture(rng, height, width, rgb, mottle=14.0, grain=6.0)
    # Faint stripes in a random direction, for texture that is not just noise.
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    theta, period = rng.uniform(0, np.pi), rng.uniform(10, 24)
    phase = (xx * np.cos(theta) + yy * np.sin(theta)) * (2 * np.pi / period)
    return img + 6.0 * np.sin(phase)[..., None]


def _object_colour(rng: np.random.Generator, class_name: str,
                   colour_by_class: bool) -> np.ndarray:
    hue = (_CLASS_HUES[class_name] + rng.uniform(-0.04, 0.04)
           if colour_by_class else rng.uniform())
    return _hsv(hue, rng.uniform(0.7, 1.0), rng.uniform(0.8, 1.0))


def shape_polygon(class_name: str, cx: float, cy: float, size: float,
                  angle: float = 0.0) -> np.ndarray:
    """Vertices of a shape, shape [N, 2] as (x, y) in pixels.

    Args:
        class_name (str): 'circle', 'square', 'triangle' or 'star'.
        cx (float): Centre x.
        cy (float): Centre y.
        size (float): Width of the upright shape (diameter, side, outer diameter).
        angle (float): Rotation in radians. Defaults to 0 (upright, square axis-aligned).
    """
    radius = size / 2 * _RADIUS_FACTOR[class_name]
    if class_name == 'circle':
        num = max(24, int(np.pi * size / 2))
        thetas = np.arange(num) * (2 * np.pi / num)
        radii = np.full(num, radius)
    elif class_name == 'square':
        thetas = np.pi / 4 + np.arange(4) * (np.pi / 2)
        radii = np.full(4, radius)
    elif class_name == 'triangle':
        thetas = -np.pi / 2 + np.arange(3) * (2 * np.pi / 3)
        radii = np.full(3, radius)
    elif class_name == 'star':
        thetas = -np.pi / 2 + np.arange(10) * (np.pi / 5)
        radii = np.where(np.arange(10) % 2 == 0, radius, 0.45 * radius)
    else:
        raise ValueError(f'unknown shape {class_name!r}; valid: {sorted(_RADIUS_FACTOR)}')
    thetas = thetas + angle
    return np.stack([cx + radii * np.cos(thetas), cy + radii * np.sin(thetas)], axis=1)


def _pil_polygon_mask(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """Rasterise a polygon [N, 2] with PIL into a bool mask [H, W]."""
    canvas = Image.new('L', (width, height), 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in polygon.tolist()], fill=1)
    return np.asarray(canvas, dtype=bool)


def _place(rng: np.random.Generator, radii: Sequence[float], height: int, width: int,
           gap: float = 4.0, tries: int = 200) -> List[Tuple[int, float, float]]:
    """Centres for discs of the given radii inside the image, pairwise ``gap`` apart.

    Returns ``(index, cx, cy)`` per placed disc; a disc that finds no free spot in ``tries``
    draws is dropped.
    """
    placed: List[Tuple[int, float, float]] = []
    for index, radius in enumerate(radii):
        for _ in range(tries):
            cx = rng.uniform(radius + 1, width - radius - 1)
            cy = rng.uniform(radius + 1, height - radius - 1)
            if all(np.hypot(cx - x, cy - y) >= radius + radii[i] + gap for i, x, y in placed):
                placed.append((index, cx, cy))
                break
    return placed


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _save_jpg(img: np.ndarray, path: Path) -> None:
    Image.fromarray(_to_uint8(img)).save(path, quality=95, subsampling=0)


def _save_png(img: np.ndarray, path: Path) -> None:
    Image.fromarray(_to_uint8(img)).save(path)


# --------------------------------------------------------------------------- stamps
def _prepare(root: Path, params: dict, force: bool) -> bool:
    """Return True when ``root`` must be (re)generated; empties it if so.

    Raises:
        FileExistsError: ``root`` is a non-empty folder this tool did not write.
    """
    stamp = root / STAMP_NAME
    wanted = dict(generator='make_toy_data', version=TOY_DATA_VERSION, **params)
    if stamp.is_file():
        if not force and json.loads(stamp.read_text()) == wanted:
            return False
        shutil.rmtree(root)
    elif root.exists() and any(root.iterdir()):
        raise FileExistsError(
            f'{root} exists, is not empty and has no {STAMP_NAME}: refusing to overwrite data '
            'this tool did not write. Choose another --out or remove the folder.')
    root.mkdir(parents=True, exist_ok=True)
    return True


def _write_stamp(root: Path, params: dict) -> None:
    stamp = dict(generator='make_toy_data', version=TOY_DATA_VERSION, **params)
    (root / STAMP_NAME).write_text(json.dumps(stamp, indent=2, sort_keys=True) + '\n')


# --------------------------------------------------------------------------- COCO
def _coco_image(rng: np.random.Generator, image_size: int, size_range: Tuple[int, int],
                colour_by_class: bool, mask_utils) -> Tuple[np.ndarray, List[dict]]:
    """One image [H, W, 3] float32 and its objects (class index, polygon, mask)."""
    h = w = image_size
    img = _background(rng, h, w)
    num = int(rng.integers(1, 4))
    classes = rng.integers(0, len(COCO_CLASSES), size=num)
    factors = np.array([_RADIUS_FACTOR[COCO_CLASSES[c]] for c in classes])
    # Cap the upright width so that every shape fits inside the image.
    sizes = np.minimum(rng.uniform(*size_range, size=num), (image_size - 4) / factors)
    objects = []
    for index, cx, cy in _place(rng, sizes / 2 * factors, h, w):
        label, size = classes[index], sizes[index]
        name = COCO_CLASSES[label]
        angle = rng.uniform(0, 2 * np.pi / 3) if name == 'triangle' else 0.0
        polygon = np.round(shape_polygon(name, cx, cy, size, angle), 2)
        flat = [float(v) for v in polygon.reshape(-1)]
        rle = mask_utils.merge(mask_utils.frPyObjects([flat], h, w))
        mask = mask_utils.decode(rle).astype(bool)
        colour = _object_colour(rng, name, colour_by_class)
        fill = _texture(rng, h, w, colour, mottle=6.0, grain=4.0)
        img[mask] = fill[mask]
        objects.append(dict(label=int(label), polygon=flat, mask=mask))
    return img, objects


def make_coco(out_dir, num_train: int = 200, num_val: int = 50, image_size: int = 160,
              seed: int = 0, size_range: Tuple[int, int] = (28, 64),
              colour_by_class: bool = True, force: bool = False) -> ToyDataInfo:
    """Write the COCO instance-segmentation toy set to ``<out_dir>/coco``.

    Args:
        out_dir (str | Path): Toy-data root; the set goes to its ``coco`` sub-folder.
        num_train (int): Images in ``train2017``. Defaults to 200.
        num_val (int): Images in ``val2017``. Defaults to 50.
        image_size (int): Side of the square images in pixels. Defaults to 160.
        seed (int): Random seed. Defaults to 0.
        size_range (tuple[int, int]): Range of an object's upright width in pixels.
            Defaults to (28, 64).
        colour_by_class (bool): Tie an object's hue to its class. Defaults to True.
        force (bool): Regenerate even when the stamp matches. Defaults to False.

    Returns:
        ToyDataInfo: ``paths`` has ``train_images``, ``val_images``, ``train_ann_file``,
        ``val_ann_file``; ``root`` is the ``data_root`` for mmdet's ``CocoDataset``.
    """
    try:
        from pycocotools import mask as mask_utils
    except ImportError as err:
        raise ImportError('the COCO toy set needs pycocotools (pip install pycocotools)') from err
    root = Path(out_dir) / 'coco'
    params = dict(kind='coco', seed=seed, num_train=num_train, num_val=num_val,
                  image_size=image_size, size_range=list(size_range),
                  colour_by_class=colour_by_class)
    paths = {'train_images': root / 'train2017', 'val_images': root / 'val2017',
             'train_ann_file': root / 'annotations' / 'instances_train2017.json',
             'val_ann_file': root / 'annotations' / 'instances_val2017.json'}
    info = ToyDataInfo('coco', root, COCO_CLASSES, COCO_PALETTE, paths,
                       {'train': num_train, 'val': num_val})
    if not _prepare(root, params, force):
        return replace(info, generated=False)

    (root / 'annotations').mkdir()
    categories = [dict(id=i + 1, name=name, supercategory='shape')
                  for i, name in enumerate(COCO_CLASSES)]
    for split, num, first_id in (('train', num_train, 1), ('val', num_val, 1_000_001)):
        img_dir = paths[f'{split}_images']
        img_dir.mkdir()
        images, annotations = [], []
        for index in range(num):
            rng = _rng(seed, 'coco', split, index)
            img, objects = _coco_image(rng, image_size, size_range, colour_by_class,
                                       mask_utils)
            image_id = first_id + index
            # PNG: lossless, and mmdet's visualizer names its overlays after the image.
            file_name = f'{image_id:012d}.png'
            _save_png(img, img_dir / file_name)
            images.append(dict(id=image_id, file_name=file_name, width=image_size,
                               height=image_size))
            for obj in objects:
                ys, xs = np.nonzero(obj['mask'])
                x0, y0 = int(xs.min()), int(ys.min())
                bbox = [float(x0), float(y0), float(xs.max() - x0 + 1),
                        float(ys.max() - y0 + 1)]
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=image_id,
                    category_id=obj['label'] + 1, segmentation=[obj['polygon']],
                    area=float(obj['mask'].sum()), bbox=bbox, iscrowd=0))
        coco = dict(
            info=dict(description=f'mmmamba toy shapes, {split}, seed {seed}',
                      version=str(TOY_DATA_VERSION)),
            licenses=[], images=images, annotations=annotations, categories=categories)
        paths[f'{split}_ann_file'].write_text(json.dumps(coco))
    _write_stamp(root, params)
    return info


# --------------------------------------------------------------------------- ADE20K
def _paint(img: np.ndarray, label: np.ndarray, mask: np.ndarray, texture: np.ndarray,
           value: int) -> None:
    img[mask] = texture[mask]
    label[mask] = value


def _ade_scene(rng: np.random.Generator, size: int) -> Tuple[np.ndarray, np.ndarray]:
    """A street-like scene: image [H, W, 3] float32 and ADE label map [H, W] uint8 (0..5)."""
    h = w = size
    wall, building, sky, floor, tree = range(1, 6)
    img = np.zeros((h, w, 3), np.float32)
    label = np.zeros((h, w), np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    jitter = lambda rgb: np.array(rgb, np.float32) + rng.uniform(-15, 15, 3)  # noqa: E731

    horizon = int(rng.uniform(0.4, 0.6) * h)
    # Sky: blue gradient, darker at the top.
    t = (yy / max(horizon, 1)).astype(np.float32)[..., None]
    sky_tex = (jitter((70, 120, 210)) * (1 - t) + jitter((160, 195, 240)) * t
               + rng.normal(0, 3, (h, w, 3)))
    _paint(img, label, yy < horizon, sky_tex, sky)
    # Floor: brown planks.
    planks = 10.0 * np.sin(yy * (2 * np.pi / rng.uniform(5, 9)))[..., None]
    floor_tex = _texture(rng, h, w, jitter((125, 90, 55)), mottle=10, grain=5) + planks
    _paint(img, label, yy >= horizon, floor_tex, floor)
    # Geometry below is in pixels of a 128 x 128 image, scaled by ``unit``.
    unit = size / 128.0
    # Buildings: brick-red blocks standing on the horizon, with a grid of dark windows.
    cell = max(4, round(8 * unit))
    for _ in range(int(rng.integers(1, 4))):
        bw, bh = rng.uniform(14, 36) * unit, rng.uniform(0.35, 0.9) * horizon
        x0, bottom = rng.uniform(0, w - bw), horizon + rng.uniform(0, 5) * unit
        mask = (xx >= x0) & (xx < x0 + bw) & (yy >= bottom - bh) & (yy < bottom)
        col, row = (xx - int(x0)) % cell, (yy - int(bottom)) % (cell + 1)
        windows = (col >= cell * 3 // 8) & (col < cell * 6 // 8) & (row >= (cell + 1) // 2)
        tex = _texture(rng, h, w, jitter((175, 75, 55)), mottle=8, grain=4)
        tex[windows] *= 0.45
        _paint(img, label, mask, tex, building)
    # Trees: green canopy disc on a dark trunk.
    for _ in range(int(rng.choice([0, 1, 1, 2]))):
        radius, cx = rng.uniform(8, 16) * unit, rng.uniform(0.08, 0.92) * w
        cy = horizon - rng.uniform(0.3, 1.2) * radius
        trunk_bottom = horizon + rng.uniform(3, 12) * unit
        canopy = np.hypot(xx - cx, yy - cy) <= radius
        trunk = (np.abs(xx - cx) <= max(1.0, 2 * unit)) & (yy >= cy) & (yy <= trunk_bottom)
        tex = _texture(rng, h, w, jitter((40, 135, 45)), mottle=18, grain=6)
        tex[trunk & ~canopy] = jitter((70, 45, 25))
        _paint(img, label, canopy | trunk, tex, tree)
    # Wall: a low grey garden wall of bricks in front, sometimes.
    if rng.uniform() < 0.6:
        ww, wh = rng.uniform(40, 100) * unit, rng.uniform(12, 28) * unit
        x0 = rng.uniform(0, w - ww)
        y0 = rng.uniform(horizon + 4 * unit, max(horizon + 4 * unit, h - wh))
        mask = (xx >= x0) & (xx < x0 + ww) & (yy >= y0) & (yy < y0 + wh)
        brick = max(3, round(5 * unit))
        course = (yy - int(y0)) // brick
        mortar = (((yy - int(y0)) % brick == 0)
                  | ((xx - int(x0) + brick * (course % 2)) % (2 * brick) == 0))
        tex = _texture(rng, h, w, jitter((165, 160, 150)), mottle=6, grain=4)
        tex[mortar] *= 0.7
        _paint(img, label, mask, tex, wall)
    # Clutter: small vivid blobs that belong to no class (label 0, ignored in training).
    for _ in range(int(rng.integers(0, 3))):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(3, 8, 2) * unit
        mask = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
        tex = _texture(rng, h, w, _hsv(rng.uniform(0.75, 0.95), 0.8, 0.9), mottle=4, grain=4)
        _paint(img, label, mask, tex, 0)
    return img + rng.normal(0, 2, img.shape), label


def make_ade(out_dir, num_train: int = 200, num_val: int = 50, image_size: int = 128,
             seed: int = 0, force: bool = False) -> ToyDataInfo:
    """Write the ADE20K-layout semantic-segmentation toy set to ``<out_dir>/ade``.

    Label maps are uint8 PNGs [H, W] with 0 = other (ignored after ``reduce_zero_label``) and
    ``i + 1`` = ``ADE_CLASSES[i]``, the real ADE20K ids of those classes.

    Args:
        out_dir (str | Path): Toy-data root; the set goes to its ``ade`` sub-folder.
        num_train (int): Images in ``training``. Defaults to 200.
        num_val (int): Images in ``validation``. Defaults to 50.
        image_size (int): Side of the square images in pixels. Defaults to 128.
        seed (int): Random seed. Defaults to 0.
        force (bool): Regenerate even when the stamp matches. Defaults to False.

    Returns:
        ToyDataInfo: ``paths`` has ``train_images``, ``train_annotations``, ``val_images``,
        ``val_annotations``; use ``data_prefix=dict(img_path='images/training',
        seg_map_path='annotations/training')`` (``validation`` for val) with ``data_root=root``.
    """
    root = Path(out_dir) / 'ade'
    params = dict(kind='ade', seed=seed, num_train=num_train, num_val=num_val,
                  image_size=image_size)
    paths = {}
    for split, folder in (('train', 'training'), ('val', 'validation')):
        paths[f'{split}_images'] = root / 'images' / folder
        paths[f'{split}_annotations'] = root / 'annotations' / folder
    info = ToyDataInfo('ade', root, ADE_CLASSES, ADE_PALETTE, paths,
                       {'train': num_train, 'val': num_val})
    if not _prepare(root, params, force):
        return replace(info, generated=False)

    for split, num in (('train', num_train), ('val', num_val)):
        paths[f'{split}_images'].mkdir(parents=True)
        paths[f'{split}_annotations'].mkdir(parents=True)
        for index in range(num):
            img, label = _ade_scene(_rng(seed, 'ade', split, index), image_size)
            stem = f'ADE_{split}_{index + 1:08d}'
            _save_jpg(img, paths[f'{split}_images'] / f'{stem}.jpg')
            Image.fromarray(label).save(paths[f'{split}_annotations'] / f'{stem}.png')
    _write_stamp(root, params)
    return info


# --------------------------------------------------------------------------- ImageNet
def _imagenet_image(rng: np.random.Generator, class_name: str, image_size: int,
                    colour_by_class: bool) -> np.ndarray:
    """One image [H, W, 3] float32 holding a single shape of ``class_name``."""
    h = w = image_size
    img = _background(rng, h, w)
    # Upright width 35-70 % of the image, capped so that the shape fits at any rotation.
    factor = _RADIUS_FACTOR[class_name]
    size = min(rng.uniform(0.35, 0.7) * image_size, (image_size - 4) / factor)
    radius = size / 2 * factor
    cx = rng.uniform(radius + 1, w - radius - 1)
    cy = rng.uniform(radius + 1, h - radius - 1)
    angle = 0.0 if class_name == 'circle' else rng.uniform(0, 2 * np.pi)
    mask = _pil_polygon_mask(shape_polygon(class_name, cx, cy, size, angle), h, w)
    colour = _object_colour(rng, class_name, colour_by_class)
    img[mask] = _texture(rng, h, w, colour, mottle=6.0, grain=4.0)[mask]
    return img


def make_imagenet(out_dir, train_per_class: int = 50, val_per_class: int = 10,
                  image_size: int = 64, seed: int = 0, colour_by_class: bool = True,
                  force: bool = False) -> ToyDataInfo:
    """Write the ImageNet-layout classification toy set to ``<out_dir>/imagenet``.

    Args:
        out_dir (str | Path): Toy-data root; the set goes to its ``imagenet`` sub-folder.
        train_per_class (int): Training images per class. Defaults to 50.
        val_per_class (int): Validation images per class. Defaults to 10.
        image_size (int): Side of the square images in pixels. Defaults to 64.
        seed (int): Random seed. Defaults to 0.
        colour_by_class (bool): Tie the shape's hue to its class. Defaults to True.
        force (bool): Regenerate even when the stamp matches. Defaults to False.

    Returns:
        ToyDataInfo: ``paths`` has ``train``, ``val``, ``train_ann_file``, ``val_ann_file``;
        mmpretrain's ``ImageNet(data_root=root, split='train',
        metainfo=dict(classes=IMAGENET_CLASSES))`` picks ``meta/train.txt`` up by itself.
    """
    root = Path(out_dir) / 'imagenet'
    params = dict(kind='imagenet', seed=seed, train_per_class=train_per_class,
                  val_per_class=val_per_class, image_size=image_size,
                  colour_by_class=colour_by_class)
    paths = {'train': root / 'train', 'val': root / 'val',
             'train_ann_file': root / 'meta' / 'train.txt',
             'val_ann_file': root / 'meta' / 'val.txt'}
    palette = tuple(tuple(int(v) for v in _hsv(_CLASS_HUES[c], 0.9, 0.9))
                    for c in IMAGENET_CLASSES)
    info = ToyDataInfo('imagenet', root, IMAGENET_CLASSES, palette, paths,
                       {'train': train_per_class * len(IMAGENET_CLASSES),
                        'val': val_per_class * len(IMAGENET_CLASSES)})
    if not _prepare(root, params, force):
        return replace(info, generated=False)

    (root / 'meta').mkdir()
    for split, per_class in (('train', train_per_class), ('val', val_per_class)):
        lines = []
        for label, class_name in enumerate(IMAGENET_CLASSES):
            class_dir = paths[split] / class_name
            class_dir.mkdir(parents=True)
            for index in range(per_class):
                rng = _rng(seed, 'imagenet', split, label, index)
                file_name = f'{class_name}_{index:05d}.jpg'
                _save_jpg(_imagenet_image(rng, class_name, image_size, colour_by_class),
                          class_dir / file_name)
                lines.append(f'{class_name}/{file_name} {label}\n')
        paths[f'{split}_ann_file'].write_text(''.join(lines))
    _write_stamp(root, params)
    return info


# --------------------------------------------------------------------------- CLI
def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate the toy COCO / ADE20K / ImageNet sets (see the module docstring).')
    parser.add_argument('--out', default='data/toy', help='toy-data root (default: data/toy)')
    parser.add_argument('--seed', type=int, default=0, help='random seed (default: 0)')
    parser.add_argument('--kinds', nargs='+', choices=KINDS, default=list(KINDS),
                        help='which sets to write (default: all)')
    parser.add_argument('--coco-train', type=int, default=200, help='COCO train images')
    parser.add_argument('--coco-val', type=int, default=50, help='COCO val images')
    parser.add_argument('--coco-size', type=int, default=160, help='COCO image side (px)')
    parser.add_argument('--ade-train', type=int, default=200, help='ADE training images')
    parser.add_argument('--ade-val', type=int, default=50, help='ADE validation images')
    parser.add_argument('--ade-size', type=int, default=128, help='ADE image side (px)')
    parser.add_argument('--imagenet-train', type=int, default=50,
                        help='ImageNet train images per class')
    parser.add_argument('--imagenet-val', type=int, default=10,
                        help='ImageNet val images per class')
    parser.add_argument('--imagenet-size', type=int, default=64, help='ImageNet image side (px)')
    parser.add_argument('--shape-only', action='store_true',
                        help='random object hues (COCO, ImageNet): shape is the only cue')
    parser.add_argument('--force', action='store_true',
                        help='regenerate even when a matching stamp exists')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> List[ToyDataInfo]:
    args = parse_args(argv)
    colour_by_class = not args.shape_only
    makers = {
        'coco': lambda: make_coco(args.out, args.coco_train, args.coco_val, args.coco_size,
                                  args.seed, colour_by_class=colour_by_class, force=args.force),
        'ade': lambda: make_ade(args.out, args.ade_train, args.ade_val, args.ade_size,
                                args.seed, force=args.force),
        'imagenet': lambda: make_imagenet(args.out, args.imagenet_train, args.imagenet_val,
                                          args.imagenet_size, args.seed,
                                          colour_by_class=colour_by_class, force=args.force),
    }
    infos = []
    for kind in KINDS:
        if kind not in args.kinds:
            continue
        start = time.perf_counter()
        info = makers[kind]()
        seconds = time.perf_counter() - start
        print('\n'.join(info.describe() + [f'    {"time":<16} {seconds:.1f} s']), flush=True)
        infos.append(info)
    return infos


if __name__ == '__main__':
    try:
        main()
    except FileExistsError as err:
        sys.exit(f'[toy-data] error: {err}')
