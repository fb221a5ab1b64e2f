"""Skip, saying why, where mmpretrain cannot run: it needs torchvision, and PyPI's torchvision
does not load with the development stack's CPU-only torch (the users' stack has both)."""
import pytest
import torch


def require_mmpretrain():
    """Import and return mmpretrain, or skip the calling test with the reason."""
    try:
        import torchvision  # noqa: F401
    except Exception as error:  # ImportError, or OSError / RuntimeError from its compiled ops
        pytest.skip(f'mmpretrain needs torchvision, which does not load on this stack (torch {torch.__version__}): '
                    f'{type(error).__name__}: {error}'[:300])
    return pytest.importorskip('mmpretrain', reason='mmpretrain is not installed on this stack '
                                                    '(the users\' stack pins mmpretrain 1.2.0)')
