"""A deterministic ImageNet-style classification set: textured shapes in clutter.

Each image holds one *target*: a shape (circle, square, triangle, star, cross) filled with one
of two textures (stripes or checks, one dark and one light colour), so a class is shape x
texture, ten classes. What makes it hard enough that a small ResNet does not saturate in a short
schedule:

* the background is smooth low-contrast noise in random colours;
* clutter: plain-coloured distractor shapes of every kind, drawn before and after the target,
  so the target is partly occluded (at most ``MAX_OCCLUDED`` of its area);
* random scale, rotation, position, texture period and angle, colours and pixel noise.

The layout is mmpretrain's ``CustomDataset`` (one folder per class, classes in sorted order)::

    train/<class>/000000.png ...   val/<class>/000000.png ...   meta/classes.txt
"""
import os

import cv2
import numpy as np

from ..utils.io import write_folder_atomically
from .synthetic_shapes import _shape_polygon, polygon_mask

SHAPES = ('circle', 'cross', 'square', 'star', 'triangle')
TEXTURES = ('checks', 'stripes')
CLASSES = tuple(f'{shape}_{texture}' for shape in SHAPES for texture in TEXTURES)  # sorted
MAX_OCCLUDED = 0.4  # the clutter may hide at most this fraction of the target


def _polygon(shape, cx, cy, size, angle):
    if shape != 'cross':
        return _shape_polygon(shape, cx, cy, size, angle)
    arm = 0.35 * size  # a plus sign: 12 corners
    xs = np.array([arm, arm, size, size, arm, arm, -arm, -arm, -size, -size, -arm, -arm])
    ys = np.array([size, arm, arm, -arm, -arm, -size, -size, -arm, -arm, arm, arm, size])
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([cx + c * xs - s * ys, cy + s * xs + c * ys], axis=1)


def _mask(shape, cx, cy, size, angle, image_size):
    return polygon_mask(_polygon(shape, cx, cy, size, angle), image_size, image_size).astype(bool)


def _texture(rng, kind, image_size):
    """Two random colours in a pattern, [H, W, 3] float: 'stripes' or 'checks' of random period and
    angle in one dark and one light colour (either order), or 'noise', smooth and low-contrast (a
    background). Every kind draws the angle and period, so each image's random stream stays the
    one the committed study's set was generated with."""
    angle, period = rng.uniform(0, np.pi), rng.uniform(4, 10)
    if kind == 'noise':
        pattern = cv2.resize(rng.uniform(0, 1, (8, 8)), (image_size, image_size), interpolation=cv2.INTER_CUBIC)
        a = rng.uniform(40, 215, 3)
        b = np.clip(a + rng.uniform(-40, 40, 3), 0, 255)
    else:
        yy, xx = np.mgrid[:image_size, :image_size].astype(np.float64)
        u = np.floor((xx * np.cos(angle) + yy * np.sin(angle)) / period)
        v = np.floor((-xx * np.sin(angle) + yy * np.cos(angle)) / period)
        pattern = u % 2 if kind == 'stripes' else (u + v) % 2
        a, b = rng.uniform(0, 100, 3), rng.uniform(155, 255, 3)
        if rng.uniform() < 0.5:
            a, b = b, a
    return a + (b - a) * pattern[..., None]


def _random_placement(rng, image_size, min_size, max_size):
    size = rng.uniform(min_size, max_size) / 2
    cx, cy = rng.uniform(size * 0.6, image_size - size * 0.6, 2)
    return size, cx, cy, rng.uniform(0, 2 * np.pi)


def _draw(rng, label, image_size, clutter):
    shape, texture = CLASSES[label].split('_')
    image = _texture(rng, 'noise', image_size)
    num_clutter = int(rng.integers(clutter // 2, clutter + 1))
    num_behind = int(rng.integers(0, num_clutter + 1))
    for _ in range(num_behind):
        size, cx, cy, angle = _random_placement(rng, image_size, image_size * 0.15, image_size * 0.45)
        image[_mask(SHAPES[rng.integers(len(SHAPES))], cx, cy, size, angle, image_size)] = rng.uniform(0, 255, 3)
    size, cx, cy, angle = _random_placement(rng, image_size, image_size * 0.45, image_size * 0.85)
    target = _mask(shape, cx, cy, size, angle, image_size)
    image[target] = _texture(rng, texture, image_size)[target]
    visible = target.copy()
    for _ in range(num_clutter - num_behind):  # in front: each may hide only what the budget allows
        for _attempt in range(5):
            size, cx, cy, angle = _random_placement(rng, image_size, image_size * 0.15, image_size * 0.45)
            mask = _mask(SHAPES[rng.integers(len(SHAPES))], cx, cy, size, angle, image_size)
            if (visible & ~mask).sum() >= (1 - MAX_OCCLUDED) * target.sum():
                image[mask] = rng.uniform(0, 255, 3)
                visible &= ~mask
                break
    image += rng.normal(0, 10, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def generate_classification_dataset(root, num_train=5000, num_val=1000, image_size=64, clutter=4, seed=0):
    """Write the set under ``root`` (replacing it), classes balanced; returns {split: images}.

    Written to a temporary folder beside ``root`` and renamed into place at the end, so an
    interrupted run never leaves a half-written set that looks complete.
    """
    for name, value, low in (('num_train', num_train, len(CLASSES)), ('num_val', num_val, len(CLASSES)),
                             ('image_size', image_size, 16), ('clutter', clutter, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f'{name} must be an integer >= {low} (ten classes need at least one image each), '
                             f'got {value!r}')

    def write(staging):
        rng = np.random.default_rng(seed)
        for split, n in (('train', num_train), ('val', num_val)):
            for cls in CLASSES:
                os.makedirs(os.path.join(staging, split, cls))
            for index in range(n):
                label = index % len(CLASSES)
                path = os.path.join(staging, split, CLASSES[label], f'{index:06d}.png')
                cv2.imwrite(path, _draw(rng, label, image_size, clutter)[:, :, ::-1])
        os.makedirs(os.path.join(staging, 'meta'))
        with open(os.path.join(staging, 'meta', 'classes.txt'), 'w') as f:
            f.write('\n'.join(CLASSES) + '\n')
        return {'train': num_train, 'val': num_val}

    return write_folder_atomically(root, write, prefix='.classes-')
