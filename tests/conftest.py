import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from oracle import FIXTURES  # noqa: E402


@pytest.fixture(scope="session")
def fixtures_dir():
    if not FIXTURES.is_dir():
        pytest.fail(f"MindSpore fixtures not found at {FIXTURES}: the checkout is incomplete")
    return FIXTURES


class _Clock:
    """A clock that moves only when a test moves it (``clock.now += 20.0``)."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    """Replace the clock every ModelCheckpoint policy reads with a ``_Clock``."""
    from msjax.train.callback import _checkpoint
    fake = _Clock()
    monkeypatch.setattr(_checkpoint, "_time", fake)
    return fake
