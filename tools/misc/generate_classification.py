#!/usr/bin/env python
"""Generate the built-in classification set (textured shapes in clutter; deterministic per seed)
in mmpretrain's CustomDataset layout: train/<class>/*.png, val/<class>/*.png."""
import argparse
import os
import time

from odconv_mmdet.datasets.synthetic_classes import CLASSES, generate_classification_dataset


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--out', default='data/shapes_cls', help='output folder (replaced)')
    parser.add_argument('--num-train', type=int, default=5000)
    parser.add_argument('--num-val', type=int, default=1000)
    parser.add_argument('--image-size', type=int, default=64)
    parser.add_argument('--clutter', type=int, default=4, help='most distractor shapes per image')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    start = time.time()
    try:
        counts = generate_classification_dataset(args.out, args.num_train, args.num_val, args.image_size,
                                                  args.clutter, args.seed)
    except ValueError as e:
        parser.error(str(e))
    for split, images in counts.items():
        print(f'{split}: {images} images in {len(CLASSES)} classes')
    print(f'wrote {os.path.abspath(args.out)} in {time.time() - start:.1f}s')


if __name__ == '__main__':
    main()
