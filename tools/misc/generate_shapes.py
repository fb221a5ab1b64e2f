#!/usr/bin/env python
"""Generate the built-in COCO-format shapes dataset (deterministic for a given seed)."""
import argparse
import os
import time

from odconv_mmdet.datasets.synthetic_shapes import generate_shapes_dataset


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--out', default='data/shapes', help='output folder (replaced)')
    parser.add_argument('--num-train', type=int, default=1800)
    parser.add_argument('--num-val', type=int, default=200)
    parser.add_argument('--image-size', type=int, default=128)
    parser.add_argument('--max-objects', type=int, default=4)
    parser.add_argument('--min-size', type=int, default=16)
    parser.add_argument('--max-size', type=int, default=64)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    start = time.time()
    try:
        counts = generate_shapes_dataset(args.out, args.num_train, args.num_val, args.image_size,
                                         args.max_objects, args.min_size, args.max_size, args.seed)
    except ValueError as e:
        parser.error(str(e))
    for split, (images, objects) in counts.items():
        print(f'{split}: {images} images, {objects} objects')
    print(f'wrote {os.path.abspath(args.out)} in {time.time() - start:.1f}s')


if __name__ == '__main__':
    main()
