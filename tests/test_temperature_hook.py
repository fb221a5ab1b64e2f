"""ODConvTemperatureHook: schedule values, resume, validation/test temperature, DDP, errors."""
import glob
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import odconv_mmdet  # noqa: F401
from odconv_mmdet.hooks import ODConvTemperatureHook, annealed_temperature
from odconv_mmdet.testing.toy_runner import ToyModel, build_runner

ROOT = Path(__file__).resolve().parents[1]


# Temperatures worked out by hand from the reference page, T = 1 + max(0, (T0 - 1) * (total - cur) / total):
# T0 = 10 over 8 iterations, after iterations 1..8 (and 1.0 beyond): 1 + 9 * (8 - i) / 8.
T0_10_OVER_8 = [8.875, 7.75, 6.625, 5.5, 4.375, 3.25, 2.125, 1.0]


def train_temperatures(model):
    return [t for mode, t in model.seen if mode == 'loss']


@pytest.mark.parametrize('cur, total, t0, expected', [(1, 100, 30, 29.71), (50, 100, 30, 15.5), (100, 100, 30, 1.0),
                                                      (250, 100, 30, 1.0), (7, 8, 10, 2.125), (3, 3, 1, 1.0)])
def test_schedule_values(cur, total, t0, expected):
    assert annealed_temperature(cur, total, t0) == pytest.approx(expected, rel=1e-12)


def test_training_follows_schedule_and_logs_temperature(tmp_path):
    runner = build_runner(tmp_path, max_epochs=3, experiment_name='run')
    runner.train()
    temps = train_temperatures(runner.model)
    assert len(temps) == 12  # 4 iterations per epoch, 2 annealing epochs -> total 8
    assert temps == pytest.approx(T0_10_OVER_8 + [1.0] * 4)
    assert temps[0] == pytest.approx(1 + 9 * 7 / 8) and temps[7:] == [1.0] * 5
    hub = runner.message_hub.get_scalar('train/odconv_temperature')
    assert hub.current() == 1.0
    log = open(glob.glob(str(tmp_path / '*' / '*.log'))[0]).read()
    assert 'odconv_temperature: 8.8750' in log  # 1 + 9 * 7/8 at the first iteration


def test_resumed_run_continues_the_schedule_exactly(tmp_path):
    full = build_runner(tmp_path / 'full', max_epochs=3)
    full.train()
    first = build_runner(tmp_path / 'part', max_epochs=1)
    first.train()
    model = ToyModel()
    resumed = build_runner(tmp_path / 'part', max_epochs=3, resume=True, model=model,
                           experiment_name='resumed')
    resumed.train()
    assert train_temperatures(model) == pytest.approx(train_temperatures(full.model)[4:])
    torch.testing.assert_close(resumed.model.conv.weight, full.model.conv.weight)


def test_validation_and_test_use_the_schedules_temperature(tmp_path):
    runner = build_runner(tmp_path, max_epochs=1, val=True)
    runner.train()
    modes = runner.model.seen
    val_temps = [t for mode, t in modes if mode == 'predict']
    assert val_temps and all(t == pytest.approx(5.5) for t in val_temps)
    ckpt = torch.load(tmp_path / 'epoch_1.pth', weights_only=False)
    assert ckpt['meta']['odconv_temperature'] == pytest.approx(5.5)
    tester = build_runner(tmp_path / 'test', max_epochs=1, val=True, load_from=str(tmp_path / 'epoch_1.pth'))
    tester.test()
    test_temps = [t for mode, t in tester.model.seen if mode == 'predict']
    assert test_temps and all(t == pytest.approx(5.5) for t in test_temps)


def test_anneal_iters(tmp_path):
    hook = dict(type='ODConvTemperatureHook', init_temperature=5, anneal_iters=3)
    runner = build_runner(tmp_path, max_epochs=1, hook_cfg=hook)
    runner.train()
    # T0 = 5 over 3 iterations: 1 + 4 * (3 - i) / 3
    assert train_temperatures(runner.model) == pytest.approx([11 / 3, 7 / 3, 1.0, 1.0])


def test_fractional_anneal_epochs_round_to_iterations(tmp_path):
    hook = dict(type='ODConvTemperatureHook', init_temperature=5, anneal_epochs=0.75)
    runner = build_runner(tmp_path, max_epochs=1, hook_cfg=hook)
    runner.train()
    # 0.75 of 4 iterations per epoch = 3 iterations: 1 + 4 * (3 - i) / 3
    assert train_temperatures(runner.model) == pytest.approx([11 / 3, 7 / 3, 1.0, 1.0])


@pytest.mark.parametrize('kwargs, message', [
    (dict(init_temperature=0.5, anneal_epochs=1), 'init_temperature'),
    (dict(init_temperature=float('nan'), anneal_epochs=1), 'init_temperature'),
    (dict(init_temperature=30), 'exactly one'),
    (dict(init_temperature=30, anneal_epochs=1, anneal_iters=10), 'exactly one'),
    (dict(init_temperature=30, anneal_epochs=0), 'anneal_epochs must be a positive number'),
    (dict(init_temperature=30, anneal_epochs=float('inf')), 'anneal_epochs must be a positive number'),
    (dict(init_temperature=30, anneal_iters=-5), 'anneal_iters must be a positive integer'),
    (dict(init_temperature=30, anneal_iters=2.5), 'anneal_iters must be a positive integer'),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ODConvTemperatureHook(**kwargs)


def test_model_without_odconv_warns(tmp_path):
    runner = build_runner(tmp_path, max_epochs=1, model=ToyModel(with_odconv=False))
    with pytest.warns(UserWarning, match='no ODConv or DyConv layers'):
        runner.train()


DDP_WORKER = r'''
import os, json
import torch
import odconv_mmdet
from mmengine.config import Config
from odconv_mmdet.utils.dist import prepare_cpu_distributed, run_and_exit
from odconv_mmdet.testing.toy_runner import build_runner


def main():
    cfg = Config(dict())
    assert prepare_cpu_distributed(cfg, 'pytorch')
    runner = build_runner({work_dir!r}, max_epochs=1, launcher='pytorch', model_wrapper_cfg=cfg.model_wrapper_cfg)
    runner.train()
    inner = runner.model.module
    assert type(runner.model).__name__ == 'MMDistributedDataParallel'
    temps = [t for mode, t in inner.seen if mode == 'loss']
    out = dict(rank=int(os.environ['RANK']), temps=temps, current=inner.conv.temperature,
               weight=inner.conv.weight.detach().flatten()[:5].tolist())
    with open(os.path.join({work_dir!r}, 'rank%d.json' % out['rank']), 'w') as f:
        json.dump(out, f)
    return 0


run_and_exit(main)
'''


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_hook_on_ddp_wrapped_model_two_process_gloo(tmp_path):
    import json
    script = tmp_path / 'worker.py'
    script.write_text(DDP_WORKER.format(work_dir=str(tmp_path)))
    env = dict(os.environ, OMP_NUM_THREADS='1')
    result = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
                             f'--master_port={free_port()}', str(script)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.load(open(tmp_path / f'rank{r}.json')) for r in (0, 1)]
    for r in ranks:  # 8 samples / 2 ranks / batch 2 = 2 iterations per epoch, total 4
        assert r['temps'] == pytest.approx([7.75, 5.5])  # T0 = 10 over 4 iterations
        assert r['current'] == pytest.approx(5.5)
    assert ranks[0]['weight'] == ranks[1]['weight']
