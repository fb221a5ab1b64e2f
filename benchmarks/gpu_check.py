"""The GPU check: ODConv's numbers and speed on a CUDA device, in one run (benchmarks/gpu_check.sh).

Needs torch only (no mmcv, mmdet or torchvision), so it runs on a bare GPU machine:

1. numerics: every formulation of ODConv2d on the device, in float32 (TF32 off), under AMP
   float16 and bfloat16, and with channels_last model and input, against the float64
   reference of odconv_mmdet/testing/official.py (outputs, input and kernel gradients);
2. layers: benchmarks/benchmark.py at detection shapes (800x1333 feature sizes), batch 2 and 16,
   K = 1 and 4, against nn.Conv2d and the official computation;
3. backbone: a ResNet-50 train step with AMP at 800x1344, batch 2, static against ODConv by the
   official topology (every conv inside the bottlenecks; stem and shortcuts static), both
   built here in plain PyTorch;
4. the workloads of issue 33 (benchmarks/benchmark_workloads.py), with AMP: the half-width
   ResNet-18 classifier step at batch 64, 64x64, and ResNet-50 at batch 16, 224x224, K = 1 and
   K = 4; ResNet-50 K = 4 train at batch 2 and inference at batch 1, 800x1344 (the detector step
   needs mmdet, which a bare GPU machine lacks). Each with the official computation
   ('per_sample', what CUDA runs), the shared matmul everywhere, and the shared matmul where the
   CPU rule (conv_path_policy.shared_matmul_pays) takes it: whether CUDA should take it too.

Writes gpu_check.json and gpu_check.md (a table) to --out-dir; exits 1 if a numeric check
fails. ``--device cpu --tiny`` runs the same code on small shapes (the test suite does).
"""
import argparse
import json
import os
import sys
import time
import warnings
from contextlib import nullcontext

import torch
import torch.nn as nn

import benchmark  # (beside this script)
from odconv_mmdet.layers import conv_path_policy
from odconv_mmdet.layers.odconv import CONV_PATHS, ODConv2d
from odconv_mmdet.utils.io import write_atomically
from odconv_mmdet.testing.official import reference_odconv

# (in, out, k, stride, groups, K)
NUMERIC_CASES = {'3x3_K4': (32, 64, 3, 1, 1, 4), '3x3_K1': (32, 64, 3, 1, 1, 1), '1x1_K1': (64, 32, 1, 1, 1, 1),
                 '1x1_K4_stride2': (64, 32, 1, 2, 1, 4), '3x3_K4_groups4': (32, 64, 3, 1, 4, 4),
                 'depthwise_K4': (32, 32, 3, 1, 32, 4)}
# relative error (norm of the difference / norm of the reference) allowed per mode
MODES = {'float32': 1e-4, 'channels_last': 1e-4, 'amp_float16': 2e-2, 'amp_bfloat16': 8e-2}
AMP_DTYPES = {'amp_float16': torch.float16, 'amp_bfloat16': torch.bfloat16}


def autocast_takes(device_type, dtype):
    """Whether this torch's autocast runs ``dtype`` on this device (torch 2.0's CPU autocast
    takes bfloat16 only: it warns and disables itself, then refuses to enter)."""
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        try:
            with torch.autocast(device_type, dtype=dtype):
                return True
        except (UserWarning, RuntimeError):
            return False


def modes_on(device):
    return [m for m in MODES if m not in AMP_DTYPES or autocast_takes(device.type, AMP_DTYPES[m])]


def relative_error(a, b):
    return ((a.double().cpu() - b.double().cpu()).norm() / b.double().cpu().norm().clamp_min(1e-30)).item()


def check_numerics(device, size):
    rows = []
    for case, (cin, cout, k, stride, groups, kernel_num) in NUMERIC_CASES.items():
        torch.manual_seed(0)
        layer = ODConv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, kernel_num=kernel_num)
        with torch.no_grad():  # attentions that really vary per sample
            for name, t in layer.state_dict().items():
                if t.is_floating_point() and 'running' not in name:
                    t.copy_(torch.randn_like(t) * 0.5)
        layer.train()
        x64 = torch.randn(4, cin, size, size, dtype=torch.float64, requires_grad=True)
        state = {n: t.double() for n, t in layer.state_dict().items()}
        weight64 = state['weight'].clone().requires_grad_(True)
        ref = reference_odconv(dict(state, weight=weight64), x64, kernel_size=k, stride=stride, padding=k // 2,
                               groups=groups, kernel_num=kernel_num, training=True)
        grad_out = torch.randn_like(ref)
        ref.backward(grad_out)
        for mode in modes_on(device):
            tolerance = MODES[mode]
            for path in [p for p in CONV_PATHS if groups == 1 or p != 'shared_matmul']:  # (ungrouped only)
                dut = ODConv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, kernel_num=kernel_num,
                               conv_path=path).to(device)
                dut.load_state_dict(layer.state_dict())
                x = x64.detach().float().to(device)
                if mode == 'channels_last':
                    dut = dut.to(memory_format=torch.channels_last)
                    x = x.contiguous(memory_format=torch.channels_last)
                x.requires_grad_(True)
                amp = torch.autocast(device.type, dtype=AMP_DTYPES[mode]) if mode in AMP_DTYPES else nullcontext()
                with amp:
                    out = dut(x)
                out.float().backward(grad_out.float().to(device))
                errors = dict(output=relative_error(out.float(), ref), input_grad=relative_error(x.grad, x64.grad),
                              kernel_grad=relative_error(dut.weight.grad, weight64.grad))
                ok = all(e <= tolerance for e in errors.values())
                if mode == 'channels_last':
                    ok = ok and out.is_contiguous(memory_format=torch.channels_last)
                rows.append(dict(case=case, mode=mode, conv_path=path, tolerance=tolerance, ok=ok, **errors))
    return rows


def bottleneck_resnet50(conv):
    """ResNet-50 (torchvision's layout: stride on the 3x3). ``conv(cin, cout, k, stride)`` builds
    every conv inside the bottlenecks; the stem and the 1x1 shortcuts are nn.Conv2d."""
    def bn(c):
        return nn.BatchNorm2d(c)

    class Bottleneck(nn.Module):
        def __init__(self, cin, width, stride):
            super().__init__()
            cout = width * 4
            self.body = nn.Sequential(conv(cin, width, 1, 1), bn(width), nn.ReLU(inplace=True),
                                      conv(width, width, 3, stride), bn(width), nn.ReLU(inplace=True),
                                      conv(width, cout, 1, 1), bn(cout))
            self.shortcut = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), bn(cout))
                             if stride != 1 or cin != cout else nn.Identity())

        def forward(self, x):
            return torch.relu(self.body(x) + self.shortcut(x))

    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), bn(64), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for i in range(blocks):
            layers.append(Bottleneck(cin, width, stride if i == 0 else 1))
            cin = width * 4
    return nn.Sequential(*layers)


def basicblock_resnet18(conv, base=32, num_classes=100):
    """Half-width ResNet-18 classifier (base 32 channels: the pretraining study's), the same
    topology rule as bottleneck_resnet50: the block convs by ``conv``."""
    class Basic(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.body = nn.Sequential(conv(cin, cout, 3, stride), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                                      conv(cout, cout, 3, 1), nn.BatchNorm2d(cout))
            self.shortcut = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                             if stride != 1 or cin != cout else nn.Identity())

        def forward(self, x):
            return torch.relu(self.body(x) + self.shortcut(x))

    layers = [nn.Conv2d(3, base, 7, 2, 3, bias=False), nn.BatchNorm2d(base), nn.ReLU(inplace=True),
              nn.MaxPool2d(3, 2, 1)]
    cin = base
    for i, stride in enumerate((1, 2, 2, 2)):
        for j in range(2):
            layers.append(Basic(cin, base * 2 ** i, stride if j == 0 else 1))
            cin = base * 2 ** i
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes)]
    return nn.Sequential(*layers)


def amp_train_step(net, x, device, loss_fn):
    """One SGD step with AMP (float16 on CUDA, bfloat16 on the CPU) and a grad scaler."""
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9)
    # torch.amp.GradScaler(device) from torch 2.3; torch.cuda.amp.GradScaler before it
    scaler = (torch.amp.GradScaler(device.type, enabled=device.type == 'cuda')
              if hasattr(torch.amp, 'GradScaler') else torch.cuda.amp.GradScaler(enabled=device.type == 'cuda'))

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.float16 if device.type == 'cuda' else torch.bfloat16):
            loss = loss_fn(net(x).float())
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    return step


def use_conv_path(net, variant):
    """Sets how every ODConv2d of ``net`` computes: 'official' (per_sample), 'shared_matmul'
    everywhere, or 'cpu_rule': the shared matmul where conv_path_policy.shared_matmul_pays says
    so for the call's shape, the official computation elsewhere."""
    for m in net.modules():
        if isinstance(m, ODConv2d):
            if getattr(m, '_cpu_rule_hook', None) is not None:
                m._cpu_rule_hook.remove()
                m._cpu_rule_hook = None
            m.conv_path = 'shared_matmul' if variant == 'shared_matmul' else 'per_sample'
            if variant == 'cpu_rule':
                def pick(layer, args):
                    shape = layer._output_shape(args[0])
                    layer.conv_path = 'shared_matmul' if conv_path_policy.shared_matmul_pays(
                        shape[0], layer.out_channels, layer.kernel_size[0], layer.kernel_num, layer.groups,
                        shape[2] * shape[3]) else 'per_sample'
                m._cpu_rule_hook = m.register_forward_pre_hook(pick)


WORKLOAD_VARIANTS = ('official', 'shared_matmul', 'cpu_rule')


def bench_workloads(device, tiny, repeats):
    """Each issue-33 workload: static, and ODConv in every WORKLOAD_VARIANTS (ms, ratios)."""
    r50, r18 = bottleneck_resnet50, basicblock_resnet18
    scale = 8 if tiny else 1
    cases = {  # name: (builder, K, batch, size, train)
        'classifier_r18_b64_k1': (r18, 1, 64, 64, True), 'classifier_r18_b64_k4': (r18, 4, 64, 64, True),
        'backbone_r50_b16_k1': (r50, 1, 16, 224, True), 'backbone_r50_b16_k4': (r50, 4, 16, 224, True),
        'backbone_train_b2': (r50, 4, 2, (800, 1344), True), 'backbone_infer_b1': (r50, 4, 1, (800, 1344), False)}
    rows = {}
    for name, (builder, kernel_num, batch, size, train) in cases.items():
        size = (size, size) if isinstance(size, int) else size
        size = tuple(max(32, s // scale) for s in size)
        batch = max(2, batch // scale) if batch > 1 else 1
        torch.manual_seed(0)
        static = builder(lambda i, o, k, s: nn.Conv2d(i, o, k, s, k // 2, bias=False)).to(device)
        odconv = builder(lambda i, o, k, s: ODConv2d(i, o, k, s, k // 2, kernel_num=kernel_num)).to(device)
        x = torch.randn(batch, 3, *size, device=device)
        if builder is r18:
            labels = torch.randint(0, 100, (batch,), device=device)
            loss_fn = lambda out: nn.functional.cross_entropy(out, labels)  # noqa: E731
        else:
            loss_fn = lambda out: out.mean()  # noqa: E731
        if train:
            static_fn, odconv_fn = (amp_train_step(n.train(), x, device, loss_fn) for n in (static, odconv))
        else:
            static.eval()
            odconv.eval()

            def inference(net):
                def run():
                    with torch.no_grad(), torch.autocast(device.type, dtype=torch.float16 if device.type == 'cuda'
                                                         else torch.bfloat16):
                        net(x)
                return run
            static_fn, odconv_fn = inference(static), inference(odconv)

        def variant(v):
            def run():
                use_conv_path(odconv, v)
                odconv_fn()
            return run
        times = benchmark.interleaved_medians([static_fn] + [variant(v) for v in WORKLOAD_VARIANTS], repeats, device)
        use_conv_path(odconv, 'official')
        ms = dict(zip(('static',) + WORKLOAD_VARIANTS, [t * 1e3 for t in times]))
        rows[name] = dict(batch=batch, input_size=list(size), kernel_num=kernel_num, train=train, amp=True, ms=ms,
                          over_static={v: ms[v] / ms['static'] for v in WORKLOAD_VARIANTS},
                          over_official={v: ms[v] / ms['official'] for v in WORKLOAD_VARIANTS[1:]})
        print(name, {k: round(v, 1) for k, v in ms.items()}, flush=True)
        del static, odconv
    return rows


def bench_backbone(device, size, batch, repeats, kernel_num):
    torch.manual_seed(0)
    nets = {'resnet50': bottleneck_resnet50(lambda i, o, k, s: nn.Conv2d(i, o, k, s, k // 2, bias=False)),
            f'odresnet50_k{kernel_num}': bottleneck_resnet50(
                lambda i, o, k, s: ODConv2d(i, o, k, s, k // 2, kernel_num=kernel_num))}
    x = torch.randn(batch, 3, *size, device=device)
    steps = [amp_train_step(net.to(device).train(), x, device, lambda out: out.mean()) for net in nets.values()]
    times = benchmark.interleaved_medians(steps, repeats, device)
    names = list(nets)
    return dict(input_size=list(size), batch=batch, amp=True, train_ms=dict(zip(names, [t * 1e3 for t in times])),
                train_ratio=times[1] / times[0])


def markdown(result):
    lines = ['| check | figure | target |', '|---|---|---|']
    numerics = result['numerics']
    failed = [r for r in numerics if not r['ok']]
    lines.append(f"| numerics vs float64 reference ({len(numerics)} cases) | "
                 f"{len(numerics) - len(failed)} pass, {len(failed)} fail | all pass |")
    for mode in sorted({r['mode'] for r in numerics}, key=list(MODES).index):
        worst = max(max(r['output'], r['input_grad'], r['kernel_grad']) for r in numerics if r['mode'] == mode)
        lines.append(f'| worst relative error, {mode} | {worst:.1e} | <= {MODES[mode]:.0e} |')
    for key, row in result['layer_batches'].items():
        s = row['layer_summary']['all']
        target = '<= 1.5' if key == 'batch 2' else '<= 1.25'
        lines.append(f"| layer train step ODConv / static, {key} (geomean) | {s['train_odconv_over_static']:.2f} | "
                     f'{target} |')
        lines.append(f"| layer train step official / ODConv, {key} (geomean) | "
                     f"{s['train_official_over_odconv']:.2f} | >= 1.3 |")
    bb = result['backbone']
    lines.append(f"| ResNet-50 train step with AMP, ODConv K=4 / static, batch {bb['batch']} | "
                 f"{bb['train_ratio']:.2f} ({' vs '.join(f'{v:.1f}' for v in bb['train_ms'].values())} ms) | <= 1.4 |")
    for name, row in result['workloads'].items():
        over = row['over_official']
        lines.append(f"| {name}: shared matmul / official, everywhere and by the CPU rule | "
                     f"{over['shared_matmul']:.2f}, {over['cpu_rule']:.2f} (official {row['ms']['official']:.1f} ms, "
                     f"static {row['ms']['static']:.1f} ms) | < 1: CUDA takes it |")
    return '\n'.join(lines) + '\n'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--out-dir', default='work_dirs/gpu_check')
    parser.add_argument('--tiny', action='store_true', help='small shapes and few repeats (a smoke run)')
    args = parser.parse_args(argv)
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        parser.error('--device cuda asked for, but torch sees no CUDA device')
    device = torch.device(args.device)
    if device.type == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = False  # float32 compared as float32
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    os.makedirs(args.out_dir, exist_ok=True)
    started = time.time()
    result = dict(device=torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu',
                  torch=torch.__version__, tiny=args.tiny)
    result['numerics'] = check_numerics(device, 6 if args.tiny else 12)
    result['modes_this_torch_lacks'] = [m for m in MODES if m not in modes_on(device)]
    print(f"numerics: {sum(r['ok'] for r in result['numerics'])}/{len(result['numerics'])} pass "
          f'({time.time() - started:.0f} s)', flush=True)
    layer_args = ['--device', args.device, '--kernel-nums', '1', '4', '--skip-backbone', '--skip-detector']
    layer_args += ['--scale', '0.08', '--stages', '4', '--repeats', '1'] if args.tiny else ['--scale', '1.0',
                                                                                           '--repeats', '10']
    result['layer_batches'] = {}
    for batch in (2, 16):
        out = os.path.join(args.out_dir, f'layers_b{batch}.json')
        benchmark.main(layer_args + ['--batches', str(batch), '--out', out])
        with open(out) as f:
            result['layer_batches'][f'batch {batch}'] = json.load(f)
    size = (64, 96) if args.tiny else (800, 1344)
    result['backbone'] = bench_backbone(device, size, 2, 1 if args.tiny else 10, 4)
    result['workloads'] = bench_workloads(device, args.tiny, 1 if args.tiny else 5)
    result['seconds'] = time.time() - started
    table = markdown(result)
    print(table)

    def write(name, text):
        def writer(path):
            with open(path, 'w') as f:
                f.write(text)
        write_atomically(os.path.join(args.out_dir, name), writer)
    write('gpu_check.json', json.dumps(result, indent=1))
    write('gpu_check.md', table)
    print(f"written: {args.out_dir}/gpu_check.json, gpu_check.md ({result['seconds']:.0f} s)")
    return 0 if all(r['ok'] for r in result['numerics']) else 1


if __name__ == '__main__':
    sys.exit(main())
