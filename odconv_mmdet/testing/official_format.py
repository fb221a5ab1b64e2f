"""State dicts in the official release's format, built only from the reference page's rules
(torchvision ResNet / MobileNetV2 names, ODConv parameter names), for loading tests."""
import math
from collections import OrderedDict

import torch
import torch.nn.functional as F

from odconv_mmdet.testing.official import reference_odconv

RESNET = {18: ('basic', [2, 2, 2, 2]), 34: ('basic', [3, 4, 6, 3]), 50: ('bottleneck', [3, 4, 6, 3]),
          101: ('bottleneck', [3, 4, 23, 3]), 152: ('bottleneck', [3, 8, 36, 3])}
MBV2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


class Filler:
    """Deterministic non-trivial values: conv weights scaled like kaiming, BN stats positive."""

    def __init__(self, seed=0):
        self.gen = torch.Generator().manual_seed(seed)

    def conv(self, *shape):
        fan_in = math.prod(shape[-3:])
        return torch.randn(*shape, generator=self.gen) * math.sqrt(2.0 / fan_in)

    def vec(self, n, scale=0.1):
        return torch.randn(n, generator=self.gen) * scale

    def bn(self, sd, prefix, n):
        sd[prefix + '.weight'] = 1 + self.vec(n)
        sd[prefix + '.bias'] = self.vec(n)
        sd[prefix + '.running_mean'] = self.vec(n)
        sd[prefix + '.running_var'] = 1 + torch.rand(n, generator=self.gen) * 0.5
        sd[prefix + '.num_batches_tracked'] = torch.tensor(100)


def add_conv(sd, fill, prefix, cin, cout, k, groups=1, kernel_num=None, reduction=0.0625):
    """A static conv (kernel_num None) or an ODConv with the official names."""
    if kernel_num is None:
        sd[prefix + '.weight'] = fill.conv(cout, cin // groups, k, k)
        return
    a = max(int(cin * reduction), 16)
    sd[prefix + '.weight'] = torch.stack([fill.conv(cout, cin // groups, k, k) for _ in range(kernel_num)])
    sd[prefix + '.attention.fc.weight'] = fill.conv(a, cin, 1, 1)
    fill.bn(sd, prefix + '.attention.bn', a)
    heads = [('channel_fc', cin)]
    if not (cin == groups == cout):
        heads.append(('filter_fc', cout))
    if k > 1:
        heads.append(('spatial_fc', k * k))
    if kernel_num > 1:
        heads.append(('kernel_fc', kernel_num))
    for name, n in heads:
        sd[f'{prefix}.attention.{name}.weight'] = fill.conv(n, a, 1, 1)
        sd[f'{prefix}.attention.{name}.bias'] = fill.vec(n, 0.5)


def official_odresnet(depth, kernel_num, seed=0, module_prefix=True, num_classes=10):
    """An OD-ResNet checkpoint as the official release saves it (``module.`` prefix, ``fc``)."""
    block, stages = RESNET[depth]
    expansion = 1 if block == 'basic' else 4
    fill, sd = Filler(seed), OrderedDict()
    sd['conv1.weight'] = fill.conv(64, 3, 7, 7)
    fill.bn(sd, 'bn1', 64)
    inplanes = 64
    for i, blocks in enumerate(stages):
        planes = 64 * 2 ** i
        for j in range(blocks):
            p = f'layer{i + 1}.{j}'
            stride = 2 if (i > 0 and j == 0) else 1
            if block == 'basic':
                convs = [(inplanes, planes, 3), (planes, planes, 3)]
            else:
                convs = [(inplanes, planes, 1), (planes, planes, 3), (planes, planes * 4, 1)]
            for c, (cin, cout, k) in enumerate(convs, 1):
                add_conv(sd, fill, f'{p}.conv{c}', cin, cout, k, kernel_num=kernel_num)
                fill.bn(sd, f'{p}.bn{c}', cout)
            if j == 0 and (stride != 1 or inplanes != planes * expansion):
                add_conv(sd, fill, f'{p}.downsample.0', inplanes, planes * expansion, 1)
                fill.bn(sd, f'{p}.downsample.1', planes * expansion)
            inplanes = planes * expansion
    sd['fc.weight'] = fill.conv(num_classes, inplanes, 1, 1).flatten(1)
    sd['fc.bias'] = fill.vec(num_classes)
    if module_prefix:
        sd = OrderedDict(('module.' + k, v) for k, v in sd.items())
    return sd


def make_divisible(value, divisor=8):
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def official_mobilenet_v2(widen, kernel_num, seed=0, num_classes=10):
    """An (OD-)MobileNetV2 checkpoint in torchvision/official naming; kernel_num None = static."""
    fill, sd = Filler(seed), OrderedDict()
    cin = make_divisible(32 * widen)
    sd['features.0.0.weight'] = fill.conv(cin, 3, 3, 3)
    fill.bn(sd, 'features.0.1', cin)
    index = 1
    for t, c, n, _ in MBV2:
        cout = make_divisible(c * widen)
        for _ in range(n):
            hidden = int(round(cin * t))
            p, part = f'features.{index}.conv', 0
            if t != 1:
                add_conv(sd, fill, f'{p}.0.0', cin, hidden, 1, kernel_num=kernel_num)
                fill.bn(sd, f'{p}.0.1', hidden)
                part = 1
            add_conv(sd, fill, f'{p}.{part}.0', hidden, hidden, 3, groups=hidden, kernel_num=kernel_num)
            fill.bn(sd, f'{p}.{part}.1', hidden)
            add_conv(sd, fill, f'{p}.{part + 1}', hidden, cout, 1, kernel_num=kernel_num)
            fill.bn(sd, f'{p}.{part + 2}', cout)
            cin, index = cout, index + 1
    last = 1280 if widen <= 1 else int(1280 * widen)
    add_conv(sd, fill, f'features.{index}.0', cin, last, 1, kernel_num=kernel_num)
    fill.bn(sd, f'features.{index}.1', last)
    sd['classifier.1.weight'] = fill.conv(num_classes, last, 1, 1).flatten(1)
    sd['classifier.1.bias'] = fill.vec(num_classes)
    return sd


def _bn(sd, p, x):
    return F.batch_norm(x, sd[p + '.running_mean'], sd[p + '.running_var'], sd[p + '.weight'],
                        sd[p + '.bias'], False, 0.0, 1e-5)


def _odconv(sd, p, x, k, stride, kernel_num):
    sub = {key[len(p) + 1:]: v for key, v in sd.items() if key.startswith(p + '.')}
    return reference_odconv(sub, x, kernel_size=k, stride=stride, padding=k // 2, kernel_num=kernel_num)


def official_odresnet_features(sd, x, depth, kernel_num):
    """Eval-mode stage features of the official OD-ResNet, from its state_dict (no prefix)."""
    block, stages = RESNET[depth]
    x = F.relu(_bn(sd, 'bn1', F.conv2d(x, sd['conv1.weight'], stride=2, padding=3)))
    x = F.max_pool2d(x, 3, 2, 1)
    outs = []
    for i, blocks in enumerate(stages):
        for j in range(blocks):
            p = f'layer{i + 1}.{j}'
            stride = 2 if (i > 0 and j == 0) else 1
            identity = x
            if p + '.downsample.0.weight' in sd:
                identity = _bn(sd, p + '.downsample.1', F.conv2d(x, sd[p + '.downsample.0.weight'], stride=stride))
            if block == 'basic':
                out = F.relu(_bn(sd, p + '.bn1', _odconv(sd, p + '.conv1', x, 3, stride, kernel_num)))
                out = _bn(sd, p + '.bn2', _odconv(sd, p + '.conv2', out, 3, 1, kernel_num))
            else:
                out = F.relu(_bn(sd, p + '.bn1', _odconv(sd, p + '.conv1', x, 1, 1, kernel_num)))
                out = F.relu(_bn(sd, p + '.bn2', _odconv(sd, p + '.conv2', out, 3, stride, kernel_num)))
                out = _bn(sd, p + '.bn3', _odconv(sd, p + '.conv3', out, 1, 1, kernel_num))
            x = F.relu(out + identity)
        outs.append(x)
    return outs
