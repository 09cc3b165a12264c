"""The live plot in a real Jupyter kernel: one figure, updated in place, never a new one per epoch.

The notebook runs in an IPython kernel (ipykernel) driven by nbclient, which applies the
kernel's ``update_display_data`` messages to the output they name, as Jupyter's front ends do.
"""

from __future__ import annotations

import base64
import sys

# Dev dependencies (pyproject's `dev` extra): a missing one is a failure, not a skip.
import ipykernel  # noqa: F401
import nbclient
import nbformat
import pytest

FIT = """
import torch
from trainlab import Trainer, build_model
from trainlab.data import load_dataset

data = load_dataset("mnist", {root!r}, sources=("local",)).subset(1000, 300, seed=0)
torch.manual_seed(0)
result = Trainer(epochs=3, runs_dir={runs!r}, device="cpu").fit(
    build_model("cnn", data), data, live_plot=True
)
print("epochs", len(result.history))
"""

ANIMATOR = """
from trainlab import d2l

animator = d2l.Animator(xlabel="epoch", xlim=[1, 4], legend=["loss", "acc"])
for epoch in range(1, 5):
    animator.add(epoch, (1.0 / epoch, 1 - 0.5 / epoch))
print("points", [len(xs) for xs in animator.X])
"""


def run_notebook(*cells: str, cwd) -> list:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code) for code in cells]
    client = nbclient.NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
    )
    # The kernel is this interpreter (the project's venv), not whatever `python3` is on PATH.
    client.kernel_manager_class = _venv_kernel_manager()
    client.execute()
    return nb.cells


def _venv_kernel_manager():
    from jupyter_client.manager import KernelManager

    class VenvKernel(KernelManager):
        def format_kernel_cmd(self, extra_arguments=None):  # noqa: ARG002 - overrides
            return [sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file]

    return VenvKernel


def images(cell) -> list[bytes]:
    return [
        base64.b64decode(out["data"]["image/png"])
        for out in cell.outputs
        if out.get("output_type") in ("display_data", "execute_result")
        and "image/png" in out.get("data", {})
    ]


def text(cell) -> str:
    return "".join(out.get("text", "") for out in cell.outputs if out["output_type"] == "stream")


@pytest.mark.slow
def test_live_plot_updates_one_figure_in_a_notebook(tmp_path, mnist_root):
    fit, animator = run_notebook(
        FIT.format(root=str(mnist_root), runs=str(tmp_path / "runs")),
        ANIMATOR,
        cwd=tmp_path,
    )
    # Trainer.fit(live_plot=True): 3 epochs, one figure (a new display per epoch would give 3).
    assert "epochs 3" in text(fit)
    shown = images(fit)
    assert len(shown) == 1 and shown[0][:4] == b"\x89PNG"
    # d2l.Animator shares the code: 4 points, one figure, no PNG file written beside the notebook.
    assert "points [4, 4]" in text(animator)
    assert len(images(animator)) == 1
    assert not (tmp_path / "animator.png").exists()
    # In a notebook nothing goes to the terminal-style epoch lines either.
    assert "live plot:" not in text(fit) + text(animator)
