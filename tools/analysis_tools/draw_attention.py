#!/usr/bin/env python
"""Draw, for one image, the kernel and spatial attention of every ODConv layer of a detector.

    python tools/analysis_tools/draw_attention.py CONFIG CHECKPOINT IMAGE --out attention.png [--json values.json]

One panel per ODConv layer, in forward order: the kernel attention over the K candidate
kernels (bars; absent when K = 1) above the spatial attention over the k x k taps (a heat map
from 0 to 1; absent for 1x1 convs). The model runs at the checkpoint's ODConv temperature
(``meta['odconv_temperature']``, written by ODConvTemperatureHook; 1 if absent), in eval mode,
on the config's test pipeline. ``--json`` also writes the values.
"""
import argparse
import json
import math
import os.path as osp
import sys


def record_attention(model, image):
    """{layer name: {'kernel': [K] or None, 'spatial': [[k x k]] or None}} of one inference."""
    from mmdet.apis import inference_detector

    from odconv_mmdet.hooks.attention_stats import AttentionRecorder
    with AttentionRecorder(model) as recorder:
        inference_detector(model, image)
    values = {}
    for name, (_, _, spatial, kernel) in recorder.records.items():
        values[name] = dict(kernel=None if kernel is None else kernel[0].tolist(),
                            spatial=None if spatial is None else spatial[0].tolist())
    return values


def draw(values, out, title):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = list(values)
    cols = min(8, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(2 * rows, cols, figsize=(1.9 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis('off')
    for i, name in enumerate(names):
        kernel_ax, spatial_ax = axes[2 * (i // cols), i % cols], axes[2 * (i // cols) + 1, i % cols]
        kernel, spatial = values[name]['kernel'], values[name]['spatial']
        kernel_ax.set_title(name.replace('backbone.', ''), fontsize=6)
        if kernel is not None:
            kernel_ax.axis('on')
            kernel_ax.bar(range(len(kernel)), kernel, color='tab:blue')
            kernel_ax.set_ylim(0, 1)
            kernel_ax.set_xticks(range(len(kernel)))
            kernel_ax.tick_params(labelsize=5)
        if spatial is not None:
            spatial_ax.axis('on')
            spatial_ax.imshow(spatial, vmin=0, vmax=1, cmap='viridis')
            spatial_ax.set_xticks([])
            spatial_ax.set_yticks([])
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('image')
    parser.add_argument('--out', required=True, help='output PNG file')
    parser.add_argument('--json', help='also write the attention values to this JSON file')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)

    import odconv_mmdet  # noqa: F401
    from odconv_mmdet.utils.checks import UserInputError, load_image_tool_inputs
    try:
        cfg = load_image_tool_inputs(args.config, args.checkpoint, args.image, args.out)
    except UserInputError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2

    import mmcv
    from mmdet.apis import init_detector

    from odconv_mmdet.compat import safe_load
    from odconv_mmdet.layers.odconv import odconv_layers, set_temperature
    model = init_detector(cfg, args.checkpoint, device=args.device)
    if not odconv_layers(model):
        print(f'error: {args.config} builds a model without ODConv layers', file=sys.stderr)
        return 2
    temperature = float(safe_load(args.checkpoint, 'cpu').get('meta', {}).get('odconv_temperature', 1.0))
    set_temperature(model, temperature)
    values = record_attention(model, mmcv.imread(args.image, channel_order='rgb'))
    draw(values, args.out, f'{osp.basename(args.image)}: kernel attention (bars) and spatial attention '
                           f'(0-1) of {len(values)} ODConv layers, T = {temperature:g}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(temperature=temperature, layers=values), f, indent=1)
    print(f'{len(values)} ODConv layers at T = {temperature:g}; saved {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
