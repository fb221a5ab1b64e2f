"""A deterministic COCO-format detection + instance-segmentation dataset of drawn shapes.

Images show circles, squares, triangles and stars at varied scales, rotations and colours, on
noisy gradient backgrounds, overlapping each other a little. Annotations are computed from what
is visible: each object's mask is rasterised in drawing order, occluded pixels are removed, and
the box and polygon(s) come from the visible mask, so they stay exact under overlap.

Layout written under ``root``::

    train/000000.png ...   val/000000.png ...
    annotations/train.json  annotations/val.json
"""
import json
import math
import os

import cv2
import numpy as np

from ..utils.io import write_folder_atomically

CLASSES = ('circle', 'square', 'triangle', 'star')
MAX_OCCLUDED = 0.3  # an object may lose at most this fraction of its area to later ones


def _shape_polygon(cls, cx, cy, size, angle):
    """Outline of one shape as an [N, 2] float array (size = circumscribed radius)."""
    if cls == 'circle':
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        radius = np.full_like(t, size)
    elif cls == 'square':
        t = np.arange(4) * np.pi / 2 + np.pi / 4
        radius = np.full(4, size)
    elif cls == 'triangle':
        t = np.arange(3) * 2 * np.pi / 3 - np.pi / 2
        radius = np.full(3, size)
    else:  # five-pointed star
        t = np.arange(10) * np.pi / 5 - np.pi / 2
        radius = np.where(np.arange(10) % 2 == 0, size, size * 0.45)
    t = t + angle
    return np.stack([cx + radius * np.cos(t), cy + radius * np.sin(t)], axis=1)


def polygon_mask(poly, height, width):
    """A [height, width] uint8 mask, 1 inside the polygon [N, 2] (sub-pixel vertices: 4 bits)."""
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return mask


def _background(rng, height, width):
    top, bottom = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    ramp = np.linspace(0, 1, height)[:, None, None]
    image = top * (1 - ramp) + bottom * ramp + rng.normal(0, 12, (height, width, 3))
    return np.broadcast_to(image, (height, width, 3))


def _distinct_colour(rng, background_mean):
    for _ in range(20):
        colour = rng.uniform(0, 255, 3)
        if np.abs(colour - background_mean).sum() > 150:
            return colour
    return 255 - background_mean


def _draw_image(rng, height, width, max_objects, min_size, max_size):
    image = _background(rng, height, width).copy()
    labels = np.zeros((height, width), np.int32)  # which object owns each pixel (0 = none)
    objects = []
    for _ in range(rng.integers(1, max_objects + 1)):
        for _attempt in range(10):
            cls = int(rng.integers(len(CLASSES)))
            size = rng.uniform(min_size, max_size) / 2
            cx, cy = rng.uniform(size * 0.8, width - size * 0.8), rng.uniform(size * 0.8, height - size * 0.8)
            poly = _shape_polygon(CLASSES[cls], cx, cy, size, rng.uniform(0, 2 * np.pi))
            mask = polygon_mask(poly, height, width)
            if mask.sum() < 30:
                continue
            # Would it hide too much of an object already drawn?
            covered = np.bincount(labels[mask.astype(bool)], minlength=len(objects) + 1)[1:]
            if any(covered[i] > MAX_OCCLUDED * o['area_full'] for i, o in enumerate(objects)):
                continue
            colour = _distinct_colour(rng, image.reshape(-1, 3).mean(0))
            shade = colour + rng.normal(0, 8, (height, width, 3))
            image[mask.astype(bool)] = shade[mask.astype(bool)]
            labels[mask.astype(bool)] = len(objects) + 1
            objects.append(dict(category=cls, area_full=int(mask.sum())))
            break
    return np.clip(image, 0, 255).astype(np.uint8), labels, objects


def _annotations_from_labels(labels, objects):
    anns = []
    for index, obj in enumerate(objects, 1):
        visible = (labels == index).astype(np.uint8)
        contours, _ = cv2.findContours(visible, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        polygons = [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]
        if not polygons:
            continue
        ys, xs = np.nonzero(visible)
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        anns.append(dict(category_id=obj['category'] + 1, bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                         area=float(visible.sum()), segmentation=polygons, iscrowd=0))
    return anns


def _write_split(root, split, num_images, rng, image_size, max_objects, min_size, max_size):
    os.makedirs(os.path.join(root, split))
    images, annotations = [], []
    for image_id in range(num_images):
        image, labels, objects = _draw_image(rng, image_size, image_size, max_objects, min_size, max_size)
        name = f'{image_id:06d}.png'
        cv2.imwrite(os.path.join(root, split, name), image[:, :, ::-1])
        images.append(dict(id=image_id, file_name=name, height=image_size, width=image_size))
        for ann in _annotations_from_labels(labels, objects):
            ann.update(id=len(annotations) + 1, image_id=image_id)
            annotations.append(ann)
    coco = dict(info=dict(description=f'odconv_mmdet synthetic shapes, {split}', version='1.0'), licenses=[],
                images=images, annotations=annotations,
                categories=[dict(id=i + 1, name=c, supercategory='shape') for i, c in enumerate(CLASSES)])
    with open(os.path.join(root, 'annotations', f'{split}.json'), 'w') as f:
        json.dump(coco, f)
    return len(annotations)


def generate_shapes_dataset(root, num_train=1800, num_val=200, image_size=128, max_objects=4,
                            min_size=16, max_size=64, seed=0):
    """Write the dataset under ``root`` (replacing it); returns {split: (images, objects)}.

    Written to a temporary folder beside ``root`` and renamed into place at the end, so an
    interrupted run never leaves a half-written dataset that looks complete.
    """
    if min(num_train, num_val, image_size, max_objects) < 1 or not 4 <= min_size <= max_size <= image_size:
        raise ValueError('need num_train, num_val, image_size, max_objects >= 1 and '
                         f'4 <= min_size <= max_size <= image_size; got {num_train=}, {num_val=}, '
                         f'{image_size=}, {max_objects=}, {min_size=}, {max_size=}')

    def write(staging):
        os.makedirs(os.path.join(staging, 'annotations'))
        rng = np.random.default_rng(seed)
        return {split: (n, _write_split(staging, split, n, rng, image_size, max_objects, min_size, max_size))
                for split, n in (('train', num_train), ('val', num_val))}

    return write_folder_atomically(root, write, prefix='.shapes-')
