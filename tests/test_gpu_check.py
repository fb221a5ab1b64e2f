"""benchmarks/gpu_check.py on the CPU (--tiny): the GPU script's code runs, checks and writes its
results; its figures need a GPU (benchmarks/gpu_check.sh)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_its_three_parts_on_the_cpu(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'gpu_check.py'), '--device', 'cpu', '--tiny',
                             '--out-dir', str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = json.loads((tmp_path / 'gpu_check.json').read_text())
    numerics = data['numerics']
    lacking = data['modes_this_torch_lacks']
    assert lacking in ([], ['amp_float16'])  # torch 2.0's CPU autocast takes bfloat16 only
    if lacking:
        with pytest.warns(UserWarning, match='CPU autocast'):
            torch.autocast('cpu', dtype=torch.float16)
    modes = {'float32', 'channels_last', 'amp_float16', 'amp_bfloat16'} - set(lacking)
    # each mode x (6 cases x 3 conv paths + the 4 ungrouped cases with the shared matmul), every one
    # within its tolerance of the float64 reference
    assert len(numerics) == len(modes) * (6 * 3 + 4) and all(r['ok'] for r in numerics)
    assert {r['mode'] for r in numerics} == modes
    assert max(r['output'] for r in numerics if r['mode'] == 'float32') < 1e-5
    assert set(data['layer_batches']) == {'batch 2', 'batch 16'}
    for key, batch in (('batch 2', 2), ('batch 16', 16)):
        rows = data['layer_batches'][key]['layers']
        assert {r['batch'] for r in rows} == {batch} and {r['kernel_num'] for r in rows} == {1, 4}
    backbone = data['backbone']
    assert set(backbone['train_ms']) == {'resnet50', 'odresnet50_k4'} and backbone['train_ratio'] > 0
    table = (tmp_path / 'gpu_check.md').read_text()
    n = len(numerics)
    assert f'numerics vs float64 reference ({n} cases) | {n} pass, 0 fail' in table
    assert 'ResNet-50 train step with AMP' in table
    workloads = data['workloads']
    assert set(workloads) == {'classifier_r18_b64_k1', 'classifier_r18_b64_k4', 'backbone_r50_b16_k1',
                              'backbone_r50_b16_k4', 'backbone_train_b2', 'backbone_infer_b1'}
    for row in workloads.values():
        assert set(row['ms']) == {'static', 'official', 'shared_matmul', 'cpu_rule'}
        assert row['over_official']['shared_matmul'] == pytest.approx(row['ms']['shared_matmul'] / row['ms']['official'])
    assert 'classifier_r18_b64_k4: shared matmul / official' in table


def test_gpu_check_refuses_cuda_without_a_gpu(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'gpu_check.py'), '--out-dir', str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2 and 'no CUDA device' in result.stderr
    assert not (tmp_path / 'gpu_check.json').exists()
