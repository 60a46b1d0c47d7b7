"""The committed MindSpore fixtures are exactly what generate.py declared in manifest.json."""
import hashlib
import json

from oracle import FIXTURES

# written by hand, not by generate.py: the tools and the manifest itself
_SOURCES = {"README.md", "generate.py", "manifest.json", "ms_inspect.py", "ms_models.py"}


def _manifest():
    return json.loads((FIXTURES / "manifest.json").read_text())


def test_the_fixture_files_are_the_manifests_files():
    on_disk = {p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert on_disk - _SOURCES == set(_manifest()["files"])


def test_every_fixture_has_the_declared_size_and_sha256():
    for name, entry in _manifest()["files"].items():
        data = (FIXTURES / name).read_bytes()
        assert len(data) == entry["size"], name
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], name


def test_the_manifest_names_the_generator_and_mindspore_2_10():
    manifest = _manifest()
    assert manifest["mindspore_version"] == "2.10.0"
    assert (FIXTURES / manifest["generator"]).is_file()
