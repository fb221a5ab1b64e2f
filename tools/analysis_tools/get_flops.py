#!/usr/bin/env python
"""Parameters and multiply-adds of a config's model, with ODConv's attention, kernel
aggregation and attention products counted (mmdet's tool of the same name counts none of them).

    python tools/analysis_tools/get_flops.py CONFIG [--shape H W] [--backbone-only] [--json OUT]

The model runs one forward pass in eval mode on a random image of H x W (default 800 x 1333,
padded as the config's data preprocessor pads), batch 1. Counting convention and components:
odconv_mmdet/utils/madds.py (convs and fully connected layers; norms, activations, pooling and
RoI ops are not counted).
"""
import argparse
import json
import sys


def build_model_and_run(cfg, shape, backbone_only):
    import torch

    from odconv_mmdet.utils.checks import UserInputError
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    model_cfg = cfg.model.copy()
    if model_cfg.get('backbone', {}).get('init_cfg') is not None:
        model_cfg.backbone.init_cfg = None  # counting needs no weights (and never the network)
    height, width = shape
    if backbone_only:
        if 'backbone' not in model_cfg:
            raise UserInputError('--backbone-only: the config\'s model has no backbone')
        backbone = MODELS.build(model_cfg.backbone)
        backbone.eval()
        x = torch.randn(1, 3, height, width)
        return backbone, lambda: backbone(x)
    model = MODELS.build(model_cfg)
    model.eval()
    image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8)
    sample = DetDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width),
                                         scale_factor=(1.0, 1.0)))
    data = model.data_preprocessor(dict(inputs=[image], data_samples=[sample]), False)
    return model, lambda: model._forward(data['inputs'], data['data_samples'])


def giga(n):
    return f'{n / 1e9:.4f} G'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('--shape', type=int, nargs=2, default=[800, 1333], metavar=('H', 'W'))
    parser.add_argument('--backbone-only', action='store_true', help='count the backbone alone')
    parser.add_argument('--json', help='also write the counts to this JSON file')
    args = parser.parse_args(argv)
    if min(args.shape) < 32:
        parser.error(f'--shape must be at least 32 x 32, got {args.shape[0]} x {args.shape[1]}')

    import odconv_mmdet  # noqa: F401
    from odconv_mmdet.utils.checks import UserInputError, load_config
    from odconv_mmdet.utils.madds import count_madds, count_parameters
    try:
        cfg = load_config(args.config)
        if 'model' not in cfg:
            raise UserInputError(f'{args.config} defines no model')
        try:
            model, run = build_model_and_run(cfg, args.shape, args.backbone_only)
        except (TypeError, KeyError, ValueError) as err:
            raise UserInputError(f'cannot build the model of {args.config}: {err}') from err
    except UserInputError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    madds = count_madds(model, run)
    params = count_parameters(model)
    total = sum(madds.values())
    what = 'backbone' if args.backbone_only else 'model'
    print(f'{args.config} ({what}), input 1 x 3 x {args.shape[0]} x {args.shape[1]}')
    print(f'{"component":28} {"MAdds":>14}')
    for key, value in madds.items():
        print(f'{key:28} {giga(value):>14}')
    print(f'{"total":28} {giga(total):>14}')
    print(f'parameters: {params["total"] / 1e6:.3f} M (of which in ODConv layers {params["odconv"] / 1e6:.3f} M)')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(config=args.config, shape=list(args.shape), part=what, madds=madds, madds_total=total,
                           params=params), f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
