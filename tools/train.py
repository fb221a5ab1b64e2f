#!/usr/bin/env python
"""Train a detector (mmdet's command-line interface), with odconv_mmdet registered.

    python tools/train.py configs/shapes/faster-rcnn_odr18-k4_fpn_shapes.py --work-dir work_dirs/demo
    bash tools/dist_train.sh CONFIG 2 [options]   # multi-process; gloo + CPU DDP without CUDA
"""
import argparse
import os
import sys


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision (needs CUDA)')
    parser.add_argument('--auto-scale-lr', action='store_true', help='scale the lr with the batch size')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from this checkpoint, or from the latest in work_dir if none given')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. train_cfg.max_epochs=2')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_cfg(args):
    import torch
    from odconv_mmdet.utils.checks import UserInputError, check_datasets, check_file, default_work_dir, load_config
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or default_work_dir(args.config)
    if args.amp:
        if not torch.cuda.is_available():
            raise UserInputError('--amp needs a CUDA device; this machine has none (train without --amp)')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise UserInputError('--auto-scale-lr needs auto_scale_lr.base_batch_size in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        check_file(args.resume, 'checkpoint to resume from')
        cfg.resume, cfg.load_from = True, args.resume
    splits = ['train_dataloader'] + (['val_dataloader'] if cfg.get('val_cfg') else [])
    check_datasets(cfg, splits)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    import odconv_mmdet  # noqa: F401  (registers ODConv, backbones, hooks; fixes torch.load)
    from mmengine.runner import Runner
    from odconv_mmdet.utils.checks import UserInputError
    from odconv_mmdet.utils.dist import prepare_cpu_distributed
    try:
        cfg = build_cfg(args)
        prepare_cpu_distributed(cfg, args.launcher)
    except UserInputError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    runner = Runner.from_cfg(cfg)
    runner.train()
    return 0


if __name__ == '__main__':
    from odconv_mmdet.utils.dist import run_and_exit
    run_and_exit(main)
