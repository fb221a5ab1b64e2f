"""im2col / fold by tap slices against torch's F.unfold / F.fold."""
import pytest
import torch
import torch.nn.functional as F

from odconv_mmdet.layers.tap_columns import ConvGeometry, TapColumns, fold_tap_columns, tap_columns, tap_dot

# (k, stride, padding, dilation, H, W)
GEOMETRIES = {
    '3x3': (3, 1, 1, 1, 6, 5),
    '3x3_stride2': (3, 2, 1, 1, 7, 6),  # odd size: the last padded row is never read
    '3x3_dilated_stride2': (3, 2, 2, 2, 9, 8),
    '5x5_no_padding': (5, 1, 0, 1, 7, 9),
    '1x1': (1, 1, 0, 1, 4, 3),
    '1x1_stride2': (1, 2, 0, 1, 5, 4),
    '1x1_padded': (1, 1, 1, 1, 3, 3),
}


def setup(name, batch=3, channels=4, channels_last=False, tap_copies=True):
    k, stride, padding, dilation, height, width = GEOMETRIES[name]
    geometry = ConvGeometry((k, k), (stride, stride), (padding, padding), (dilation, dilation), tap_copies)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, channels, height, width, dtype=torch.float64, generator=gen)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    spatial = torch.rand(batch, k * k, dtype=torch.float64, generator=gen)
    unfold_args = dict(kernel_size=k, dilation=dilation, padding=padding, stride=stride)
    return geometry, x, spatial, unfold_args


def scaled(cols, spatial):
    batch, rows, positions = cols.shape
    taps = spatial.size(1)
    return (cols.view(batch, rows // taps, taps, positions) * spatial.view(batch, 1, taps, 1)).view_as(cols)


@pytest.mark.parametrize('tap_copies', [True, False], ids=['tap_copies', 'unfold'])
@pytest.mark.parametrize('channels_last', [False, True], ids=['contiguous', 'channels_last'])
@pytest.mark.parametrize('name', list(GEOMETRIES))
def test_columns_and_fold_match_unfold_and_fold(name, channels_last, tap_copies):
    geometry, x, spatial, unfold_args = setup(name, channels_last=channels_last, tap_copies=tap_copies)
    expected = F.unfold(x, **unfold_args)
    assert geometry.output_hw(x.size(2), x.size(3))[0] * geometry.output_hw(x.size(2), x.size(3))[1] == \
        expected.size(2)
    torch.testing.assert_close(tap_columns(x, geometry), expected, rtol=0, atol=0)
    torch.testing.assert_close(tap_columns(x, geometry, spatial), scaled(expected, spatial), rtol=0, atol=0)

    cols = torch.randn_like(expected)
    folded = F.fold(cols, x.shape[2:], **unfold_args)
    got = fold_tap_columns(cols, x.shape, geometry)
    assert got.shape == x.shape
    torch.testing.assert_close(got, folded, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(fold_tap_columns(cols, x.shape, geometry, spatial),
                               F.fold(scaled(cols, spatial), x.shape[2:], **unfold_args), rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize('tap_copies', [True, False], ids=['tap_copies', 'unfold'])
@pytest.mark.parametrize('name', list(GEOMETRIES))
def test_tap_dot_is_the_spatial_gradient(name, tap_copies):
    geometry, x, spatial, unfold_args = setup(name, tap_copies=tap_copies)
    spatial.requires_grad_(True)
    columns_grad = torch.randn_like(F.unfold(x, **unfold_args))
    (scaled(F.unfold(x, **unfold_args), spatial) * columns_grad).sum().backward()
    torch.testing.assert_close(tap_dot(columns_grad, x, geometry), spatial.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('tap_copies', [True, False], ids=['tap_copies', 'unfold'])
def test_empty_batch(tap_copies):
    geometry, x, spatial, _ = setup('3x3', batch=0, tap_copies=tap_copies)
    cols = tap_columns(x, geometry, spatial)
    assert cols.shape == (0, 4 * 9, 30)
    assert fold_tap_columns(cols, x.shape, geometry, spatial).shape == x.shape
    assert tap_dot(cols, x, geometry).shape == (0, 9)


@pytest.mark.parametrize('tap_copies', [True, False], ids=['tap_copies', 'unfold'])
@pytest.mark.parametrize('name', ['3x3_dilated_stride2', '1x1_stride2'])
def test_tap_columns_function_gradients(name, tap_copies):
    geometry, x, spatial, _ = setup(name, batch=2, channels=2, tap_copies=tap_copies)
    x.requires_grad_(True)
    spatial.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, s: TapColumns.apply(a, s, geometry), (x, spatial))
    assert torch.autograd.gradgradcheck(lambda a, s: TapColumns.apply(a, s, geometry), (x, spatial))
    assert torch.autograd.gradcheck(lambda a: TapColumns.apply(a, None, geometry), (x,))
