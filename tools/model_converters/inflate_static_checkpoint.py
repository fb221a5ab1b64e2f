#!/usr/bin/env python
"""Inflate a static ResNet / MobileNetV2 checkpoint (torchvision or mmdet naming) into an ODConv
backbone with K kernels: each static conv seeds all K kernels (see odconv_mmdet/converters/inflate.py).

    python tools/model_converters/inflate_static_checkpoint.py resnet50.pth odresnet50_k4_inflated.pth --depth 50 --kernel-num 4
    python tools/model_converters/inflate_static_checkpoint.py mobilenet_v2.pth odmbv2_k4.pth --arch mobilenet_v2 --kernel-num 4
"""
import argparse
import os
import sys

import torch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='static checkpoint')
    parser.add_argument('dst', help='output ODConv backbone checkpoint')
    parser.add_argument('--arch', choices=['resnet', 'mobilenet_v2'], default='resnet')
    parser.add_argument('--depth', type=int, default=50, help='ResNet depth')
    parser.add_argument('--widen-factor', type=float, default=1.0, help='MobileNetV2 width')
    parser.add_argument('--kernel-num', type=int, default=4)
    parser.add_argument('--reduction', type=float, default=0.0625)
    parser.add_argument('--seed', type=int, default=0, help='seed of the attention initialisation')
    parser.add_argument('--trust', action='store_true',
                        help='unpickle the checkpoint fully (only for a file you trust: it can run code)')
    args = parser.parse_args(argv)
    if not os.path.isfile(args.src):
        parser.error(f'checkpoint not found: {args.src}')

    import odconv_mmdet  # noqa: F401  (registers the backbones)
    from mmdet.registry import MODELS
    from odconv_mmdet.compat import UntrustedCheckpointError, safe_load
    from odconv_mmdet.converters import UnrecognisedCheckpoint, inflate_state_dict
    from odconv_mmdet.utils.io import save_atomically

    torch.manual_seed(args.seed)
    if args.arch == 'resnet':
        cfg = dict(type='ODResNet', depth=args.depth)
    else:
        cfg = dict(type='ODMobileNetV2', widen_factor=args.widen_factor, out_indices=(7,))
    cfg.update(kernel_num=args.kernel_num, reduction=args.reduction)
    backbone = MODELS.build(cfg)
    try:
        state_dict, report = inflate_state_dict(
            safe_load(args.src, 'cpu', trusted=args.trust, opt_in='pass --trust'), backbone)
    except (UnrecognisedCheckpoint, UntrustedCheckpointError) as e:
        print(f'error: {args.src}: {e}', file=sys.stderr)
        return 2
    print(f'{cfg["type"]} K={args.kernel_num}: inflated {len(report["inflated"])} convs, copied '
          f'{len(report["copied"])} static tensors, initialised {len(report["initialised"])} attention '
          f'tensors, dropped {len(report["dropped"])} classifier keys')
    save_atomically({'state_dict': state_dict, 'meta': {'inflated_from': os.path.basename(args.src),
                                                         'backbone': cfg}}, args.dst)
    print(f'saved {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
