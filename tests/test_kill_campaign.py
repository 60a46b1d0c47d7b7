"""Short kill campaign (the long one: ``python tests/reliability/kill_campaign.py --kills 200``).

For each save mode and for ModelCheckpoint with keep 1 and 2: SIGKILL the saver at random moments;
no committed checkpoint is lost, no partial file sits under a final name, and the next save (or a
new ModelCheckpoint) removes the dead temporary files.
"""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "reliability"))
import kill_campaign  # noqa: E402

KILLS = 2


@pytest.mark.parametrize("mode", kill_campaign.MODES)
def test_kills_lose_nothing(mode, tmp_path):
    reports = kill_campaign.campaign([mode], KILLS, str(tmp_path), seed=1, window=1.0)
    assert len(reports) == KILLS
    for r in reports:
        assert r["partial"] == [], r
        assert r["lost"] == 0, r
        assert r["orphans_left"] == [], r
