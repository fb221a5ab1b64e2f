"""The built-in classification set: layout mmpretrain reads, balance, determinism, and refusals."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from odconv_mmdet.datasets.synthetic_classes import CLASSES, generate_classification_dataset

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_layout_balance_and_determinism(tmp_path):
    counts = generate_classification_dataset(str(tmp_path / 'a'), num_train=30, num_val=20, image_size=40, seed=7)
    generate_classification_dataset(str(tmp_path / 'b'), num_train=30, num_val=20, image_size=40, seed=7)
    generate_classification_dataset(str(tmp_path / 'c'), num_train=30, num_val=20, image_size=40, seed=8)
    assert counts == {'train': 30, 'val': 20}
    assert len(CLASSES) == 10 and list(CLASSES) == sorted(CLASSES)  # CustomDataset sorts its folders
    for split, n in (('train', 30), ('val', 20)):
        assert sorted(os.listdir(tmp_path / 'a' / split)) == list(CLASSES)
        per_class = [len(os.listdir(tmp_path / 'a' / split / c)) for c in CLASSES]
        assert sum(per_class) == n and max(per_class) - min(per_class) <= 1
    assert open(tmp_path / 'a' / 'meta' / 'classes.txt').read().split() == list(CLASSES)
    name = os.path.join('train', CLASSES[3], sorted(os.listdir(tmp_path / 'a' / 'train' / CLASSES[3]))[0])
    a, b, c = (cv2.imread(str(tmp_path / d / name)) for d in 'abc')
    assert a.shape == (40, 40, 3) and np.array_equal(a, b) and not np.array_equal(a, c)
    assert not [p for p in os.listdir(tmp_path) if p.startswith('.classes-')]  # no staging folder left


def orientation_coherence(image):
    """Coherence of the gradient structure tensor over the strongest edges: near 1 where the edges
    share one orientation (stripes), near 0 where two perpendicular ones mix (checks)."""
    grey = cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float64), (3, 3), 0.8)
    gx, gy = cv2.Sobel(grey, cv2.CV_64F, 1, 0), cv2.Sobel(grey, cv2.CV_64F, 0, 1)
    strong = np.hypot(gx, gy) > np.percentile(np.hypot(gx, gy), 80)
    jxx, jyy, jxy = (gx * gx)[strong].sum(), (gy * gy)[strong].sum(), (gx * gy)[strong].sum()
    return np.sqrt((jxx - jyy) ** 2 + 4 * jxy ** 2) / (jxx + jyy)


def test_the_target_carries_its_class_texture(tmp_path):
    # without clutter the only strong edges are the target's texture (the background is smooth)
    root = tmp_path / 'set'
    generate_classification_dataset(str(root), num_train=200, num_val=10, image_size=64, clutter=0, seed=1)
    coherence = {'stripes': [], 'checks': []}
    for c in CLASSES:
        files = sorted(os.listdir(root / 'train' / c))
        assert len(files) == 20
        coherence[c.split('_')[1]] += [orientation_coherence(cv2.imread(str(root / 'train' / c / f))) for f in files]
    assert np.mean(coherence['stripes']) > 3 * np.mean(coherence['checks'])


@pytest.mark.parametrize('argument, value', [('num_train', 5), ('num_val', 0), ('image_size', 8),
                                             ('clutter', -1), ('num_train', 12.5), ('image_size', True)])
def test_bad_arguments_are_refused_and_nothing_is_written(tmp_path, argument, value):
    kwargs = dict(num_train=20, num_val=10, image_size=32, clutter=2)
    kwargs[argument] = value
    with pytest.raises(ValueError, match=argument):
        generate_classification_dataset(str(tmp_path / 'set'), **kwargs)
    assert os.listdir(tmp_path) == []


def test_the_tool_refuses_bad_arguments_with_a_usage_error(tmp_path):
    tool = os.path.join(REPO, 'tools', 'misc', 'generate_classification.py')
    bad = subprocess.run([sys.executable, tool, '--out', str(tmp_path / 'x'), '--num-train', '3'],
                         capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2 and 'num_train must be an integer >= 10' in bad.stderr
    good = subprocess.run([sys.executable, tool, '--out', str(tmp_path / 'x'), '--num-train', '10', '--num-val', '10',
                           '--image-size', '24'], capture_output=True, text=True, cwd=REPO)
    assert good.returncode == 0 and 'train: 10 images in 10 classes' in good.stdout
    assert len(os.listdir(tmp_path / 'x' / 'val')) == 10
