"""A short fuzz run of every reader (tests/fuzz): a malformed file either loads or raises an
msjax error (``MsjaxError`` and ``ValueError``) whose message names the file; anything else,
a hang, a crash or too much memory fails. Long runs: ``python -m tests.fuzz.run --help``."""
import pytest

from fuzz import run

CASES = 300          # per reader; case 0 is the unmutated seed


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    with run.Pool(tmp_path_factory.mktemp("fuzz"), jobs=1) as p:
        yield p


@pytest.mark.parametrize("reader", run.READERS)
def test_reader_survives_fuzzing(pool, reader):
    results = pool.run([(reader, n) for n in range(CASES)])
    stats, failures = run.summarize(results)
    assert stats[reader].cases == CASES
    seed = next(reply for _, case, reply in results if case == 0)
    assert seed["outcome"] == "loaded", f"the {reader} seed itself does not load: {seed['msg']}"
    if failures:
        pytest.fail(f"{len(failures)} of {CASES} {reader} cases break the reader contract:\n"
                    + run.table(stats, failures), pytrace=False)
