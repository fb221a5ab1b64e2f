#!/usr/bin/env python
"""Draw a checkpoint's detections (boxes, masks, class names, scores) on an image; save a PNG.

    python demo/image_demo.py CONFIG CHECKPOINT IMAGE --out pred.png [--score-thr 0.3] [--scale 4]
"""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('image')
    parser.add_argument('--out', required=True, help='output PNG file')
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--scale', type=int, default=4, help='upscale small images before drawing, for legibility')
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
    import numpy as np
    from mmdet.apis import inference_detector, init_detector
    from mmdet.registry import VISUALIZERS

    model = init_detector(cfg, args.checkpoint, device=args.device)
    image = mmcv.imread(args.image, channel_order='rgb')
    result = inference_detector(model, image)
    if args.scale > 1:  # draw on an enlarged copy so labels stay readable on 128 px images
        image = mmcv.imrescale(image, args.scale, interpolation='nearest')
        pred = result.pred_instances
        pred.bboxes = pred.bboxes * args.scale
        if 'masks' in pred:
            pred.masks = pred.masks.repeat_interleave(args.scale, 1).repeat_interleave(args.scale, 2)
    visualizer = VISUALIZERS.build(dict(type='DetLocalVisualizer', name=f'infer_{id(model)}'))
    visualizer.dataset_meta = model.dataset_meta
    visualizer.add_datasample('prediction', image, data_sample=result, draw_gt=False,
                              pred_score_thr=args.score_thr, out_file=args.out)
    kept = int((result.pred_instances.scores >= args.score_thr).sum())
    classes = model.dataset_meta['classes']
    names = [classes[int(i)] for i, s in zip(result.pred_instances.labels, result.pred_instances.scores)
             if s >= args.score_thr]
    print(f'{kept} detections with score >= {args.score_thr}: {", ".join(names) or "none"}; saved {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
