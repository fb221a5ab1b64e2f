#!/usr/bin/env python
"""Reproduce the gloo exit abort that ``odconv_mmdet.utils.dist.run_and_exit`` avoids.

Each run starts two plain torch processes (gloo, file store; no torchrun, mmengine or model
code of ours) that do three DDP backward passes of an ``nn.Conv2d`` and end, either normally
or through ``run_and_exit``. It prints how many runs had a rank die with SIGABRT
("terminate called without an active exception") after its work was done.

    python benchmarks/gloo_exit_abort.py [--runs 20] [--switch-interval 5]

A long ``sys.setswitchinterval`` makes the main thread keep the GIL from the last backward to
interpreter shutdown, which widens the race; ``--switch-interval 0.005`` is Python's default.
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import tempfile


def worker(rank, store_path, exit_mode, switch_interval):
    import torch
    import torch.distributed as dist
    sys.setswitchinterval(switch_interval)

    def main():
        dist.init_process_group('gloo', store=dist.FileStore(store_path, 2), rank=rank, world_size=2)
        model = torch.nn.parallel.DistributedDataParallel(torch.nn.Conv2d(3, 4, 3))
        for _ in range(3):
            model(torch.randn(2, 3, 8, 8)).sum().backward()
        return 0

    if exit_mode == 'run_and_exit':
        from odconv_mmdet.utils.dist import run_and_exit
        run_and_exit(main)
    sys.exit(main())


def count_aborts(runs, exit_mode, switch_interval):
    aborted = failed = 0
    env = dict(os.environ, OMP_NUM_THREADS='1')
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            procs = [subprocess.Popen([sys.executable, __file__, '--worker', str(rank), osp.join(tmp, 'store'),
                                       exit_mode, str(switch_interval)],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                     for rank in (0, 1)]
            results = [(p.wait(timeout=300), p.stdout.read()) for p in procs]
        codes = [rc for rc, _ in results]
        if any(rc == -6 or 'terminate called without an active exception' in out for rc, out in results):
            aborted += 1
        elif any(codes):
            failed += 1
            print(f'  {exit_mode}: exit codes {codes}:', *(out[-500:] for _, out in results), sep='\n')
    return aborted, failed


def main():
    if len(sys.argv) > 1 and sys.argv[1] == '--worker':
        rank, store, mode, interval = sys.argv[2:6]
        worker(int(rank), store, mode, float(interval))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=20, help='process pairs per exit mode')
    parser.add_argument('--switch-interval', type=float, default=5.0, help='sys.setswitchinterval in the workers')
    args = parser.parse_args()
    import torch
    print(f'torch {torch.__version__}, Python {sys.version.split()[0]}, switch interval {args.switch_interval} s')
    for mode in ('normal', 'run_and_exit'):
        aborted, failed = count_aborts(args.runs, mode, args.switch_interval)
        print(f'{mode:>12} exit: {aborted}/{args.runs} runs aborted, {failed} failed otherwise')


if __name__ == '__main__':
    main()
