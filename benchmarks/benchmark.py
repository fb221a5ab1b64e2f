"""Speed and memory of ODConv against a static conv and the official formulation.

Prints a table and writes JSON. Two parts:

* layers: every conv of a ResNet-50 bottleneck (1x1 reduce, 3x3, 1x1 expand) in each of the
  four stages, at the feature sizes of a detection input (800x1333 times ``--scale``), for
  each batch size and K. Three implementations of the same shape:
  ``static`` (nn.Conv2d), ``odconv`` (this package's ODConv2d) and ``official`` (the official
  layer's computation with a copy of odconv's weights, see odconv_mmdet/testing/official.py: pooling and
  1x1-conv attention heads, per-sample kernels from a [B, K, ...] product, the batch folded into
  the groups of one conv, and its K = 1 1x1 shortcut). Train = forward + backward of
  sum(output); inference = forward under no_grad in eval mode.
* backbone: ODResNet-50 (K = --backbone-k) against mmdet's ResNet-50 (needs mmdet), train
  step and batch-1 inference.
* detector: the train step (losses + backward) of two detector configs on the same synthetic
  batch, by default the shapes Faster R-CNN with ODResNet-18 K=4 against its static ResNet-18
  twin (needs mmdet).

Outputs, input gradients and weight gradients of ``odconv`` and ``official`` are compared
(relative norm of the difference) in float32 as timed and in float64, where only a
difference in the function, not rounding, would show.

Times are medians of ``--repeats`` interleaved runs (each round runs every implementation
once, so drift in machine load hits all of them alike). Peak memory is the most memory the
train step holds above what existed before it (CUDA: the caching allocator's peak; CPU: the
profiler's allocation timeline).

    python benchmarks/benchmark.py --out work_dirs/benchmark.json              # CPU defaults
    python benchmarks/benchmark.py --device cuda --scale 1.0 --out bench.json  # a GPU
"""
import argparse
import copy
import json
import math
import os
import platform
import statistics
import time

import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from odconv_mmdet.layers.odconv import ODConv2d
from odconv_mmdet.utils.io import write_atomically
from odconv_mmdet.testing.official import OfficialODConv2d

STAGE_CHANNELS = (64, 128, 256, 512)
STAGE_STRIDES = (4, 8, 16, 32)


def layer_shapes(scale):
    """(name, in, out, k, H, W): the stride-1 convs of a ResNet-50 bottleneck, per stage."""
    height, width = round(800 * scale / 32) * 32, round(1333 * scale / 32) * 32
    shapes = []
    for stage, (c, s) in enumerate(zip(STAGE_CHANNELS, STAGE_STRIDES), 1):
        h, w = height // s, width // s
        shapes += [(f's{stage}.conv1', 4 * c, c, 1, h, w), (f's{stage}.conv2', c, c, 3, h, w),
                   (f's{stage}.conv3', c, 4 * c, 1, h, w)]
    return (height, width), shapes


def synchronize(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


def interleaved_medians(fns, repeats, device):
    """Median seconds of each fn over `repeats` rounds; each round runs every fn once, in an
    order rotated by one each round, so no fn always follows the same other one (a fn right
    after one that filled the caches or the allocator pays for it)."""
    for fn in fns:  # warm-up (allocator, kernel choice, caches)
        fn()
        fn()
    times = [[] for _ in fns]
    for round_index in range(repeats):
        for offset in range(len(fns)):
            i = (round_index + offset) % len(fns)
            fn = fns[i]
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def peak_memory(module, step, device, inputs=()):
    """Bytes of memory the step holds at its peak above what was allocated before it (the
    gradients of an earlier step are released first, so they do not offset the count)."""
    step()
    module.zero_grad(set_to_none=True)
    for tensor in inputs:
        tensor.grad = None
    if device.type == 'cuda':
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    # The raw allocation records ('[memory]': +bytes allocated, -bytes freed, each with its own
    # time). The per-op figures of prof.events() cannot be replayed in order: an op's memory is
    # booked at its start, including what it frees at its end, so nested ops (autograd
    # functions, backward nodes) would show a wrong peak.
    records = [e for e in prof.profiler.kineto_results.events() if e.name() == '[memory]']
    current = peak = 0
    def start(event):  # torch 2.0's events have start_us only
        return event.start_ns() if hasattr(event, 'start_ns') else event.start_us()

    for record in sorted(records, key=start):
        current += record.nbytes()
        peak = max(peak, current)
    return peak


def train_step(module, x):
    """Forward + backward of the sum of the output (of all outputs, for a backbone)."""
    def step():
        module.zero_grad(set_to_none=True)
        x.grad = None
        out = module(x)
        outs = [out] if isinstance(out, torch.Tensor) else out
        sum(o.sum() for o in outs).backward()
    return step


def relative_error(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def check_same_numbers(odconv, official, x):
    """Relative differences of output, input gradient and weight gradient (odconv vs official),
    each from a fresh copy, so the timed layers' BN statistics stay untouched."""
    results = []
    for module in (copy.deepcopy(odconv), copy.deepcopy(official)):
        xg = x.detach().clone().requires_grad_(True)
        out = module(xg)
        out.backward(torch.ones_like(out))
        results.append((out.detach(), xg.grad, module.weight.grad))
    return max(relative_error(a, b) for a, b in zip(*results))


def bench_layer(name, cin, cout, k, h, w, batch, kernel_num, repeats, device):
    torch.manual_seed(0)
    static = nn.Conv2d(cin, cout, k, padding=k // 2, bias=False).to(device)
    odconv = ODConv2d(cin, cout, k, padding=k // 2, kernel_num=kernel_num).to(device)
    if batch == 1:  # the official layer cannot train at batch 1 (its BN); compare in its eval mode
        odconv.attention.bn.eval()
    official = OfficialODConv2d.from_layer(odconv)
    x = torch.randn(batch, cin, h, w, device=device, requires_grad=True)
    impls = {'static': static, 'odconv': odconv, 'official': official}
    # The same function? In float64 (differences are then the formulation's, not rounding's),
    # and in float32 as timed.
    odconv64 = copy.deepcopy(odconv).double()  # on the device (a GPU's float64 is fast enough)
    rel_err64 = check_same_numbers(odconv64, OfficialODConv2d.from_layer(odconv64), x.detach().double())
    rel_err = check_same_numbers(odconv, official, x)
    train = interleaved_medians([train_step(m, x) for m in impls.values()], repeats, device)
    memory = [peak_memory(m, train_step(m, x), device, (x,)) for m in impls.values()]
    for module in impls.values():
        module.eval()
    x_inf = x.detach()
    with torch.no_grad():
        infer = interleaved_medians([(lambda m=m: m(x_inf)) for m in impls.values()], repeats, device)
    return dict(name=name, in_channels=cin, out_channels=cout, kernel_size=k, height=h, width=w,
                batch=batch, kernel_num=kernel_num, rel_err_vs_official=rel_err,
                rel_err_vs_official_float64=rel_err64,
                train_ms=dict(zip(impls, [t * 1e3 for t in train])),
                infer_ms=dict(zip(impls, [t * 1e3 for t in infer])),
                train_peak_mb=dict(zip(impls, [m / 2 ** 20 for m in memory])))


def geomean(values):
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def summarize_layers(rows):
    summary = {}
    for key, subset in [('all', rows)] + [(f'K={k}', [r for r in rows if r['kernel_num'] == k])
                                          for k in sorted({r['kernel_num'] for r in rows})]:
        if not subset:
            continue
        summary[key] = dict(  # None where no case fits (e.g. no batch-1 case)
            train_odconv_over_static=geomean(r['train_ms']['odconv'] / r['train_ms']['static'] for r in subset),
            train_official_over_odconv=geomean(r['train_ms']['official'] / r['train_ms']['odconv'] for r in subset),
            infer_odconv_over_static=geomean(r['infer_ms']['odconv'] / r['infer_ms']['static'] for r in subset),
            infer_b1_odconv_over_static=geomean(r['infer_ms']['odconv'] / r['infer_ms']['static']
                                                for r in subset if r['batch'] == 1),
            infer_official_over_odconv=geomean(r['infer_ms']['official'] / r['infer_ms']['odconv'] for r in subset),
            peak_memory_odconv_over_static=geomean(r['train_peak_mb']['odconv'] / r['train_peak_mb']['static']
                                                   for r in subset if r['train_peak_mb']['static'] > 0
                                                   and r['train_peak_mb']['odconv'] > 0),
            max_rel_err_vs_official=max(r['rel_err_vs_official'] for r in subset),
            max_rel_err_vs_official_float64=max(r['rel_err_vs_official_float64'] for r in subset))
    return summary


# The speed bounds of issue 24 that this benchmark checks on its layer cases: (what, summary key,
# 'max' or 'min', the bound). The detector step's bound (at most 5 % slower than before the
# layer was slimmed) is checked by benchmark_workloads.py --baseline.
BOUNDS = (('per-layer train, ODConv / static', 'train_odconv_over_static', 'max', 1.15),
          ('batch-1 inference, ODConv / static', 'infer_b1_odconv_over_static', 'max', 1.25),
          ('train, official / ODConv', 'train_official_over_odconv', 'min', 1.3))


def check_bounds(summary):
    """Each bound with the measured geometric mean over all layer cases and whether it holds."""
    checks = []
    for what, key, kind, bound in BOUNDS:
        value = summary.get('all', {}).get(key)
        holds = None if value is None else (value <= bound if kind == 'max' else value >= bound)
        checks.append(dict(what=what, value=value, bound=bound, kind=kind, holds=holds))
    return checks


def bench_backbone(kernel_num, size, train_batch, repeats, device):
    try:
        from mmdet.models.backbones import ResNet
        from odconv_mmdet.backbones import ODResNet
    except ImportError as err:
        return dict(skipped=f'mmdet is not importable here ({err})')
    torch.manual_seed(0)
    common = dict(depth=50, out_indices=(0, 1, 2, 3), frozen_stages=-1, norm_eval=False)
    nets = {'resnet50': ResNet(**common).to(device),
            f'odresnet50_k{kernel_num}': ODResNet(kernel_num=kernel_num, **common).to(device)}

    x_train = torch.randn(train_batch, 3, *size, device=device)
    for net in nets.values():
        net.train()
    train = interleaved_medians([train_step(n, x_train) for n in nets.values()], repeats, device)
    memory = [peak_memory(n, train_step(n, x_train), device) for n in nets.values()]
    x_inf = torch.randn(1, 3, *size, device=device)
    for net in nets.values():
        net.eval()
    with torch.no_grad():
        infer = interleaved_medians([(lambda n=n: n(x_inf)) for n in nets.values()], repeats, device)
    names = list(nets)
    return dict(input_size=list(size), train_batch=train_batch, infer_batch=1,
                train_ms=dict(zip(names, [t * 1e3 for t in train])),
                infer_b1_ms=dict(zip(names, [t * 1e3 for t in infer])),
                train_peak_mb=dict(zip(names, [m / 2 ** 20 for m in memory])),
                train_ratio=train[1] / train[0], infer_b1_ratio=infer[1] / infer[0],
                peak_memory_ratio=memory[1] / memory[0])


def synthetic_detection_batch(batch, size, num_classes, seed=0):
    """A batch as a detector's train step takes it: uint8 images and 3 random boxes each."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=gen))
        corners = torch.rand(3, 2, 2, generator=gen) * size
        boxes = torch.cat([corners.min(dim=1).values, corners.max(dim=1).values + 8], dim=1).clamp(max=size)
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size), scale_factor=(1.0, 1.0),
                                             pad_shape=(size, size)))
        sample.gt_instances = InstanceData(bboxes=boxes, labels=torch.randint(0, num_classes, (3,), generator=gen))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def bench_detector(configs, batch, size, repeats, device):
    """Train step (forward with losses + backward) of each config's detector on the same batch."""
    try:
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
        from odconv_mmdet.utils.checks import load_config
    except ImportError as err:
        return dict(skipped=f'mmdet is not importable here ({err})')
    register_all_modules(init_default_scope=False)
    steps = [detector_train_step(path, batch, size, device, load_config, MODELS) for path in configs]
    names = [os.path.splitext(os.path.basename(path))[0] for path in configs]
    times = interleaved_medians(steps, repeats, device)
    return dict(configs=[os.path.relpath(os.path.abspath(c), ROOT) for c in configs], batch=batch,
                input_size=[size, size],
                train_ms=dict(zip(names, [t * 1e3 for t in times])), train_ratio=times[0] / times[1])


def detector_train_step(path, batch, size, device, load_config, models):
    """The train step (forward with losses + backward) of the config's detector on a synthetic batch."""
    cfg = load_config(path)
    torch.manual_seed(0)
    model = models.build(cfg.model).to(device)
    model.train()
    data = model.data_preprocessor(synthetic_detection_batch(batch, size, cfg.model.roi_head.bbox_head.num_classes),
                                   True)

    def step():
        model.zero_grad(set_to_none=True)
        loss, _ = model.parse_losses(model.loss(data['inputs'], data['data_samples']))
        loss.backward()
    step.model = model
    return step


def print_layer_header():
    print(f"{'layer':10} {'in>out':>10} {'k':>1} {'HxW':>7} {'B':>2} {'K':>1} | "
          f"{'train ms: static':>16} {'odconv':>8} {'official':>8} {'od/st':>6} {'off/od':>6} | "
          f"{'infer ms: static':>16} {'odconv':>7} {'od/st':>6} | {'mem od/st':>9} {'rel err':>8}")


def print_layer_row(r):
    t, i, m = r['train_ms'], r['infer_ms'], r['train_peak_mb']
    print(f"{r['name']:10} {str(r['in_channels']) + '>' + str(r['out_channels']):>10} {r['kernel_size']:>1} "
          f"{str(r['height']) + 'x' + str(r['width']):>7} {r['batch']:>2} {r['kernel_num']:>1} | "
          f"{t['static']:16.1f} {t['odconv']:8.1f} {t['official']:8.1f} {t['odconv'] / t['static']:6.2f} "
          f"{t['official'] / t['odconv']:6.2f} | {i['static']:16.2f} {i['odconv']:7.2f} "
          f"{i['odconv'] / i['static']:6.2f} | {m['odconv'] / m['static'] if m['static'] > 0 else float('nan'):9.2f} "
          f"{r['rel_err_vs_official']:8.1e}", flush=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default='work_dirs/benchmark.json', help='JSON file to write')
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    parser.add_argument('--scale', type=float, default=0.4,
                        help='detection input 800x1333 times this (default 0.4: 320x544 on a CPU)')
    parser.add_argument('--batches', type=int, nargs='+', default=[1, 2, 8])
    parser.add_argument('--kernel-nums', type=int, nargs='+', default=[1, 4])
    parser.add_argument('--stages', type=int, nargs='+', default=[1, 2, 3, 4], help='ResNet stages to include')
    parser.add_argument('--repeats', type=int, default=5, help='interleaved timing rounds (median)')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch\'s)')
    parser.add_argument('--backbone-k', type=int, default=4)
    parser.add_argument('--backbone-train-batch', type=int, default=2)
    parser.add_argument('--skip-layers', action='store_true')
    parser.add_argument('--skip-backbone', action='store_true')
    parser.add_argument('--detector-configs', nargs=2, metavar=('ODCONV', 'STATIC'),
                        default=[os.path.join(ROOT, 'configs', 'shapes', name) for name in
                                 ('faster-rcnn_odr18-k4_fpn_shapes.py', 'faster-rcnn_r18_fpn_shapes.py')],
                        help='two detector configs whose train steps are compared (ODConv first)')
    parser.add_argument('--detector-batch', type=int, default=8)
    parser.add_argument('--detector-size', type=int, default=128, help='square image side')
    parser.add_argument('--skip-detector', action='store_true')
    args = parser.parse_args(argv)
    for name in ('batches', 'kernel_nums', 'stages'):
        if any(v < 1 for v in getattr(args, name)):
            parser.error(f'--{name.replace("_", "-")} values must be >= 1')
    if any(s > 4 for s in args.stages):
        parser.error('--stages are 1 to 4')
    if not args.scale > 0 or args.repeats < 1:
        parser.error('--scale must be > 0 and --repeats >= 1')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        parser.error('--device cuda asked for, but torch sees no CUDA device')
    if not args.skip_detector:
        if args.detector_batch < 1 or args.detector_size < 32:
            parser.error('--detector-batch must be >= 1 and --detector-size >= 32')
        for path in args.detector_configs:
            if not os.path.isfile(path):
                parser.error(f'--detector-configs: {path} not found')
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
        # Full float32 everywhere, so the formulations are compared at the same precision.
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    input_size, shapes = layer_shapes(args.scale)
    shapes = [s for s in shapes if int(s[0][1]) in args.stages]
    print(f'device {device} ({torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()}), '
          f'torch {torch.__version__}, threads {torch.get_num_threads()}, detection input {input_size[0]}x{input_size[1]}')
    rows = []
    if not args.skip_layers:
        print_layer_header()
        for kernel_num in args.kernel_nums:
            for batch in args.batches:
                for shape in shapes:
                    rows.append(bench_layer(*shape, batch, kernel_num, args.repeats, device))
                    print_layer_row(rows[-1])
    summary = summarize_layers(rows)
    backbone = None if args.skip_backbone else bench_backbone(
        args.backbone_k, input_size, args.backbone_train_batch, args.repeats, device)
    detector = None if args.skip_detector else bench_detector(
        args.detector_configs, args.detector_batch, args.detector_size, args.repeats, device)
    bounds = check_bounds(summary) if summary else []
    result = dict(device=str(device), torch=torch.__version__, threads=torch.get_num_threads(),
                  detection_input=list(input_size), repeats=args.repeats, layers=rows,
                  layer_summary=summary, bounds=bounds, backbone=backbone, detector=detector)
    def write_json(path):
        with open(path, 'w') as f:
            json.dump(result, f, indent=1)
    write_atomically(args.out, write_json)
    if summary:
        print('\nLayer summary (geometric means over shapes, batches and K):')
    def fmt(value):
        return 'n/a' if value is None else f'{value:.2f}'
    for key, s in summary.items():
        print(f"  {key:4}: train odconv/static {fmt(s['train_odconv_over_static'])}  "
              f"official/odconv {fmt(s['train_official_over_odconv'])}  "
              f"infer odconv/static {fmt(s['infer_odconv_over_static'])} (batch 1: {fmt(s['infer_b1_odconv_over_static'])})  "
              f"official/odconv {fmt(s['infer_official_over_odconv'])}  "
              f"peak mem odconv/static {fmt(s['peak_memory_odconv_over_static'])}  "
              f"max rel err float32 {s['max_rel_err_vs_official']:.1e}, float64 "
              f"{s['max_rel_err_vs_official_float64']:.1e}")
    for b in bounds:
        verdict = 'no case' if b['holds'] is None else ('holds' if b['holds'] else 'MISSED')
        print(f"  bound: {b['what']} {'<=' if b['kind'] == 'max' else '>='} {b['bound']}: "
              f"{fmt(b['value'])} {verdict}")
    if backbone is not None:
        if 'skipped' in backbone:
            print(f"Backbone: skipped: {backbone['skipped']}")
        else:
            print(f"Backbone ({input_size[0]}x{input_size[1]}): train batch {backbone['train_batch']} "
                  + '  '.join(f'{n} {t:.0f} ms' for n, t in backbone['train_ms'].items())
                  + f"  ratio {backbone['train_ratio']:.2f}; inference batch 1 "
                  + '  '.join(f'{n} {t:.0f} ms' for n, t in backbone['infer_b1_ms'].items())
                  + f"  ratio {backbone['infer_b1_ratio']:.2f}; peak memory ratio {backbone['peak_memory_ratio']:.2f}")
    if detector is not None:
        if 'skipped' in detector:
            print(f"Detector: skipped: {detector['skipped']}")
        else:
            print(f"Detector train step (batch {detector['batch']}, {args.detector_size}x{args.detector_size}): "
                  + '  '.join(f'{n} {t:.0f} ms' for n, t in detector['train_ms'].items())
                  + f"  ratio {detector['train_ratio']:.2f}")
    print(f'JSON written to {args.out}')


if __name__ == '__main__':
    main()
