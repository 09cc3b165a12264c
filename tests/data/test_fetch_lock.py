"""Two processes fetching the same dataset at once (torchrun's ranks, two shells): one copies
the files, the other waits for it and finds them whole."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trainlab.data.mnist_family import FAMILIES, ensure_files

FETCH = """\
import json, logging, sys
from pathlib import Path
from trainlab.data.mnist_family import ensure_files

lines = []
class Keep(logging.Handler):  # what the fetch said, through the trainlab logger
    def emit(self, record):
        lines.append(record.getMessage())
logging.getLogger("trainlab").addHandler(Keep())
logging.getLogger("trainlab").setLevel(logging.INFO)
print("ready", flush=True)
sys.stdin.readline()  # the start signal: both processes fetch at once
files = ensure_files("fashion-mnist", Path(sys.argv[1]), ("local", "system"))
print(json.dumps({"log": lines, "files": sorted(files)}), flush=True)
"""


@pytest.mark.skipif(
    not Path(FAMILIES["fashion-mnist"].system_dirs[0]).is_dir(),
    reason="apt-get install dataset-fashion-mnist (.ci/run does)",
)
def test_two_processes_fetching_at_once_copy_the_files_once(tmp_path):
    root = tmp_path / "root"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", FETCH, str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for worker in workers:  # both have imported trainlab and wait for the signal
        assert worker.stdout.readline() == "ready\n", worker.communicate()
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err
        results.append(json.loads(out))

    copies = [[line for line in r["log"] if line.startswith("copied ")] for r in results]
    assert sorted(len(c) for c in copies) == [0, 4]  # one copied all four, the other none
    assert results[0]["files"] == results[1]["files"] and len(results[0]["files"]) == 4
    # the files are whole: every one verifies by its md5 on a fresh read
    assert len(ensure_files("fashion-mnist", root, ("local",), verify=True)) == 4
