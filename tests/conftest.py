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
