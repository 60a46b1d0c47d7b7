"""Every notebook in notebooks/ is stored without outputs, runs top to bottom (nbclient, python3 kernel)
and shows what it claims: the printed numbers are read back and checked, a matplotlib figure
(image/png) is drawn, and tqdm.auto's progress bar is a widget (no "IProgress not found").

One test per notebook, so xdist spreads them; each checks its own claims (``CLAIMS``).
"""
import re
from pathlib import Path

import pytest
from oracle import MINDSPORE_PLATFORM

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
WIDGET = "application/vnd.jupyter.widget-view+json"


def _outputs(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def _text(nb):
    parts = []
    for out in _outputs(nb):
        parts.append(out.get("text", ""))
        parts.append(out.get("data", {}).get("text/plain", ""))
        parts.extend(out.get("traceback", []))
    return "\n".join(parts)


def _number(pattern, text, count=1):
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in the outputs:\n{text[-3000:]}"
    values = [float(v) for v in found.groups()]
    return values[0] if count == 1 else values


def _quickstart(text, workdir):
    best, tuned = _number(r"final accuracy: ([0-9.]+) \(best checkpoint\), ([0-9.]+) \(fine-tuned\)", text, 2)
    assert best >= 0.95 and tuned >= 0.9
    reload = re.search(r"reloaded accuracy: ([0-9.]+) \(recorded during training: ([0-9.]+)\)", text)
    assert reload and reload.group(1) == reload.group(2)              # the best checkpoint is that epoch's net
    assert "not loaded: ['fc3.weight', 'fc3.bias']" in text
    ckpts = sorted(p.name for p in (workdir / "quickstart_output" / "checkpoints").glob("lenet-*.ckpt"))
    assert len(ckpts) == 10


def _export(text, workdir):
    assert _number(r"test accuracy: ([0-9.]+)", text) >= 0.85
    for what, tolerance in (("MINDIR in msjax GraphCell", 1e-5), ("ONNX in onnxruntime", 1e-4)):
        diff = _number(rf"{what}: max \|diff\| vs the network ([0-9.e+-]+); same prediction for 32/32 images", text)
        assert diff <= tolerance, (what, diff)
    for suffix in ("mindir", "onnx", "air"):
        assert (workdir / "export_output" / f"lenet5.{suffix}").stat().st_size > 200_000
    assert "the MINDIR's parameters: conv1.weight, conv2.weight, fc1.weight" in text


def _transfer_learning(text, workdir):
    assert _number(r"source task \(digits 0-4\) accuracy: ([0-9.]+)", text) >= 0.9
    assert "backbone frozen: not loaded from the checkpoint: ['fc3.weight', 'fc3.bias']" in text
    assert "backbone frozen: 2 trainable parameters" in text and "backbone fine-tuned: 8 trainable parameters" in text
    assert "frozen backbone parameters changed by training: []" in text
    before = _number(r"backbone fine-tuned: 8 trainable parameters; target accuracy ([0-9.]+) before", text)
    frozen, tuned, scratch = _number(r"final target accuracy: backbone frozen ([0-9.]+); backbone fine-tuned "
                                     r"([0-9.]+); from scratch ([0-9.]+)", text, 3)
    assert before < 0.5 and tuned >= 0.6                      # a fresh head is at chance; the backbone carries over
    assert min(frozen, tuned) > scratch + 0.2                 # transfer beats scratch on 100 images
    assert (workdir / "transfer_output" / "lenet5_digits0-4.ckpt").is_file()


def _checkpoint_surgery(text, workdir):
    full, half = _number(r"not loaded: \[\]; accuracy ([0-9.]+) \(float32\) -> ([0-9.]+) \(Dense weights", text, 2)
    assert full >= 0.85 and abs(full - half) <= 0.02
    assert "# 19 entries: 8 network parameters, 11 others" in text
    assert "fc1.weight float16, fc1.bias float32" in text and "head.weight float16, head.bias float32" in text
    assert "trained vs edited: 11 dropped, 0 added, 3 changed, 5 identical" in text
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "torch is not installed" in text
    else:
        assert _number(r"PyTorch vs msjax output max \|diff\| ([0-9.e+-]+)", text) <= 1e-5
    assert (workdir / "surgery_output" / "lenet5_edited.ckpt").is_file()


def _mindspore_network_in_jax(text, workdir):
    assert _number(r"GraphCell vs MindSpore's own output: max \|diff\| ([0-9.e+-]+)", text) <= 1e-5
    before, after = _number(r"GraphCell accuracy ([0-9.]+) before, ([0-9.]+) after", text, 2)
    assert before < 0.5 and after >= 0.85
    assert _number(r"msjax LeNet5 with the saved .ckpt vs the GraphCell: max \|diff\| ([0-9.e+-]+)", text) <= 1e-6
    if MINDSPORE_PLATFORM:
        assert "MindSpore not loaded: []" in text
        assert _number(r"MindSpore LeNet5 with the .ckpt vs the GraphCell: max \|diff\| ([0-9.e+-]+)", text) <= 1e-5
    assert (workdir / "ms_network_output" / "lenet5_finetuned_in_jax.ckpt").is_file()


CLAIMS = {"quickstart": _quickstart, "export": _export, "transfer_learning": _transfer_learning,
          "checkpoint_surgery": _checkpoint_surgery,
          "mindspore_network_in_jax": _mindspore_network_in_jax}
PARAMS = [pytest.param(name, marks=pytest.mark.mindspore) if name == "mindspore_network_in_jax" else name
          for name in CLAIMS]


def test_every_notebook_has_its_claims_checked():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(CLAIMS)


@pytest.mark.parametrize("name", list(CLAIMS))
def test_notebook_is_stored_without_outputs(name):
    import nbformat

    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


@pytest.mark.parametrize("name", PARAMS)
def test_notebook_runs_and_shows_what_it_claims(name, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs, text = _outputs(nb), _text(nb)
    assert any("image/png" in o.get("data", {}) for o in outputs), "no matplotlib figure"
    assert not any("image/svg+xml" in o.get("data", {}) for o in outputs)      # figures are matplotlib's PNGs
    assert any(WIDGET in o.get("data", {}) for o in outputs), "no tqdm.auto widget"
    assert "IProgress not found" not in text and "TqdmWarning" not in text
    CLAIMS[name](text, tmp_path)
