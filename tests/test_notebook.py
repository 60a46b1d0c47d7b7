"""notebooks/quickstart.ipynb runs top to bottom (nbclient, python3 kernel) and shows what it claims."""
import re
from pathlib import Path


NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


def _text(cell):
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts.append(out.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def test_notebook_is_stored_without_outputs():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_notebook_runs_and_reports_accuracy(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    texts = [_text(c) for c in nb.cells if c.cell_type == "code"]
    final = re.search(r"final accuracy: ([0-9.]+) \(best checkpoint\), ([0-9.]+) \(fine-tuned\)", texts[-1])
    assert final, texts[-1]
    best, tuned = map(float, final.groups())
    assert best >= 0.95 and tuned >= 0.9
    reload = re.search(r"reloaded accuracy: ([0-9.]+) \(recorded during training: ([0-9.]+)\)", "".join(texts))
    assert reload and reload.group(1) == reload.group(2)              # the best checkpoint is that epoch's net
    assert "not loaded: ['fc3.weight', 'fc3.bias']" in "".join(texts)
    plots = [o for c in nb.cells for o in c.get("outputs", [])
             if {"image/png", "image/svg+xml"} & set(o.get("data", {}))]
    assert len(plots) >= 1                                           # the loss curve (and accuracy) is drawn
    ckpts = sorted(p.name for p in (tmp_path / "quickstart_output" / "checkpoints").glob("lenet-*.ckpt"))
    assert len(ckpts) == 10
