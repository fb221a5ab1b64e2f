#!/usr/bin/env python
"""Convert an official ODConv ImageNet checkpoint (OD-ResNet or OD-MobileNetV2) into this
project's backbone naming, dropping the classifier.

    python tools/model_converters/convert_official_checkpoint.py od_resnet50_4x.pth.tar odresnet50_k4.pth
    # then: backbone=dict(type='ODResNet', depth=50, kernel_num=4,
    #                     init_cfg=dict(type='Pretrained', checkpoint='odresnet50_k4.pth'))
"""
import argparse
import os
import sys

from odconv_mmdet.compat import UntrustedCheckpointError, safe_load
from odconv_mmdet.converters import UnrecognisedCheckpoint, convert_official
from odconv_mmdet.utils.io import save_atomically


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='official checkpoint (.pth / .pth.tar)')
    parser.add_argument('dst', help='output backbone checkpoint')
    parser.add_argument('--verbose', action='store_true', help='print every key mapping')
    parser.add_argument('--trust', action='store_true',
                        help='unpickle the checkpoint fully (only for a file you trust: it can run code)')
    args = parser.parse_args(argv)
    if not os.path.isfile(args.src):
        parser.error(f'checkpoint not found: {args.src}')
    try:
        arch, state_dict, mapping, dropped = convert_official(
            safe_load(args.src, 'cpu', trusted=args.trust, opt_in='pass --trust'))
    except (UnrecognisedCheckpoint, UntrustedCheckpointError) as e:
        print(f'error: {args.src}: {e}', file=sys.stderr)
        return 2
    renamed = sum(old != new for old, new in mapping)
    print(f'{arch}: mapped {len(mapping)} tensors ({renamed} renamed), dropped classifier keys: '
          f'{", ".join(dropped) or "none"}')
    if args.verbose:
        for old, new in mapping:
            print(f'  {old} -> {new}')
    save_atomically({'state_dict': state_dict, 'meta': {'converted_from': os.path.basename(args.src),
                                                         'architecture': arch}}, args.dst)
    print(f'saved {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
