"""Drop-in ``datasets`` and ``transforms`` for tutorial code that uses torchvision's, offline.

Example (the seeds' MNIST programs, with one import line changed):
    >>> from trainlab.compat import datasets, transforms   # was: from torchvision import ...
    >>> train_set = datasets.MNIST(root="./data", train=True, download=True,
    ...                            transform=transforms.ToTensor())

``datasets.MNIST``, ``FashionMNIST`` and ``KMNIST`` are torchvision's classes whose download
goes through trainlab's sources instead of the mirrors alone: files already in trainlab's data
root, the mirrors, and for MNIST the package-index copy, all checked. The files are then written
into ``root`` in torchvision's layout, so everything else behaves as torchvision does.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from torchvision import datasets as _tv
from torchvision import transforms

from trainlab.data.mnist_family import raw_dir
from trainlab.fsutil import atomic_write_bytes

__all__ = ["datasets", "transforms"]


class _TrainlabDownload:
    trainlab_name = ""

    def download(self) -> None:
        if self._check_exists():
            return
        from trainlab.data.mnist_family import ensure_files
        from trainlab.data.root import resolve_root
        from trainlab.logs import to_stderr

        with to_stderr():  # what was fetched, as torchvision says it
            files = ensure_files(self.trainlab_name, resolve_root())
        target = raw_dir(self.trainlab_name, Path(self.root))
        for stem, local in files.items():
            if not (target / stem).exists():
                atomic_write_bytes(target / stem, local.content)


class MNIST(_TrainlabDownload, _tv.MNIST):
    trainlab_name = "mnist"


class FashionMNIST(_TrainlabDownload, _tv.FashionMNIST):
    trainlab_name = "fashion-mnist"


class KMNIST(_TrainlabDownload, _tv.KMNIST):
    trainlab_name = "kmnist"


datasets = SimpleNamespace(
    MNIST=MNIST, FashionMNIST=FashionMNIST, KMNIST=KMNIST, ImageFolder=_tv.ImageFolder
)
