#!/usr/bin/env python
"""Evaluate a checkpoint (mmdet's command-line interface), with odconv_mmdet registered.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.pkl]
                         [--show-dir DIR] [--show [--wait-time S]]
    bash tools/dist_test.sh CONFIG CHECKPOINT 2 [options]

--show-dir draws every test image's predictions (score >= the visualization hook's score_thr,
0.3 by default) into DIR, which is relative to WORK_DIR/TIMESTAMP as in mmdet; --show opens a
window per image instead (it needs a display).
"""
import argparse
import json
import os
import os.path as osp
import sys


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Test (and evaluate) a detector')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument('--out', help='dump predictions to a pickle file')
    parser.add_argument('--show', action='store_true', help='show each prediction in a window (needs a display)')
    parser.add_argument('--show-dir', help='draw the predictions of every image into this directory '
                        '(relative to WORK_DIR/TIMESTAMP, as in mmdet)')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds each --show window stays open')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    import odconv_mmdet  # noqa: F401
    from mmengine.runner import Runner
    from odconv_mmdet.utils.checks import UserInputError, check_datasets, check_file, default_work_dir, load_config
    from odconv_mmdet.utils.dist import prepare_cpu_distributed
    try:
        cfg = load_config(args.config, args.cfg_options)
        check_file(args.checkpoint, 'checkpoint')
        check_datasets(cfg, ['test_dataloader'])
        cfg.launcher = args.launcher
        cfg.work_dir = args.work_dir or cfg.get('work_dir') or default_work_dir(args.config)
        cfg.load_from = args.checkpoint
        if args.out:
            if not args.out.endswith(('.pkl', '.pickle')):
                raise UserInputError(f'--out must be a .pkl file, got {args.out}')
            cfg.test_evaluator = [cfg.test_evaluator] if isinstance(cfg.test_evaluator, dict) else list(cfg.test_evaluator)
            cfg.test_evaluator.append(dict(type='DumpDetResults', out_file_path=args.out))
        if args.show or args.show_dir:
            if args.show and sys.platform.startswith('linux') and not os.environ.get('DISPLAY'):
                raise UserInputError('--show needs a display and DISPLAY is not set; '
                                     'use --show-dir DIR to save the pictures instead')
            if 'visualization' not in cfg.get('default_hooks', {}):
                raise UserInputError("--show / --show-dir need default_hooks.visualization in the config, "
                                     "e.g. dict(type='DetVisualizationHook')")
            from mmdet.engine.hooks.utils import trigger_visualization_hook
            trigger_visualization_hook(cfg, args)
        prepare_cpu_distributed(cfg, args.launcher)
    except UserInputError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    if runner.rank == 0:
        path = osp.join(cfg.work_dir, 'test_metrics.json')
        with open(path, 'w') as f:
            json.dump({k: float(v) if isinstance(v, (int, float)) else str(v) for k, v in metrics.items()}, f, indent=1)
        print('metrics: ' + json.dumps({k: round(float(v), 4) for k, v in metrics.items()
                                        if isinstance(v, (int, float))}))
        if args.show_dir:
            print(f'pictures: {osp.join(runner.work_dir, runner.timestamp, args.show_dir)}')
    return 0


if __name__ == '__main__':
    from odconv_mmdet.utils.dist import run_and_exit
    run_and_exit(main)
