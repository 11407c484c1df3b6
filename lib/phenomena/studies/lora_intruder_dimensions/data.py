"""Text data, offline: a topic task from standard-library docstrings, and prose for the forgetting probe."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from pydoc_data.topics import topics
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor


class TaskSettings(Protocol):
    """What :func:`build_task` reads of a config (the study's ``Config`` has these fields; ``data`` does not import
    it, so ``config`` can import ``TASKS`` from here without a cycle)."""

    task: str
    task_dataset: str
    n_test_per_class: int
    seed: int


# Topic-classification tasks from the standard library's docstrings: label = the group of the documenting module.
# The target task is "kinds" (below); topic tasks "a", "b" and "c" are the later tasks of the sequential (continual)
# panel, or other targets.
TASK_MODULES: dict[str, dict[str, tuple[str, ...]]] = {
    "a": {
        "files": (
            "os",
            "os.path",
            "pathlib",
            "shutil",
            "glob",
            "tempfile",
            "filecmp",
            "stat",
            "fnmatch",
            "zipfile",
            "tarfile",
        ),
        "network": (
            "socket",
            "http.client",
            "http.server",
            "urllib.request",
            "urllib.parse",
            "smtplib",
            "ftplib",
            "email.message",
            "email.utils",
            "ssl",
            "imaplib",
            "poplib",
        ),
        "concurrency": (
            "threading",
            "multiprocessing",
            "asyncio",
            "concurrent.futures",
            "queue",
            "subprocess",
            "selectors",
            "sched",
        ),
        "numbers": ("math", "decimal", "fractions", "statistics", "random", "cmath", "numbers"),
        "text": (
            "re",
            "string",
            "textwrap",
            "difflib",
            "unicodedata",
            "codecs",
            "html",
            "html.parser",
            "xml.dom.minidom",
            "xml.etree.ElementTree",
            "json",
            "csv",
        ),
        "testing": (
            "unittest",
            "unittest.mock",
            "doctest",
            "pdb",
            "trace",
            "timeit",
            "cProfile",
            "pstats",
            "logging",
            "warnings",
            "traceback",
        ),
    },
    "b": {
        "containers": ("collections", "heapq", "bisect", "array", "enum", "dataclasses", "copy", "weakref"),
        "functional": ("functools", "itertools", "operator", "contextlib"),
        "introspection": ("inspect", "ast", "dis", "types", "importlib", "sys", "gc", "tokenize", "symtable"),
        "time": ("datetime", "time", "calendar", "zoneinfo"),
        "storage": ("sqlite3", "pickle", "shelve", "zlib", "gzip", "bz2", "lzma", "marshal"),
    },
    "c": {
        "cli": ("argparse", "getopt", "optparse", "cmd", "shlex", "getpass"),
        "crypto": ("hashlib", "hmac", "secrets", "base64", "binascii", "uuid"),
        "io": ("io", "mmap", "struct", "locale", "gettext", "configparser", "pprint", "reprlib"),
        "web": (
            "wsgiref.simple_server",
            "wsgiref.handlers",
            "http.cookies",
            "http.cookiejar",
            "webbrowser",
            "mimetypes",
            "ipaddress",
        ),
    },
}


@functools.cache
def stdlib_docstrings(modules: tuple[str, ...]) -> dict[str, list[tuple[str, str]]]:
    """(kind, first paragraph) of the docstrings of each standard-library module (see ``stdlib_docs.py``), read in
    a clean, isolated interpreter so that the data do not depend on what this process has imported."""

    script = Path(__file__).with_name("stdlib_docs.py")
    proc = subprocess.run(
        [sys.executable, "-I", "-S", str(script), *modules],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return {m: [(kind, text) for kind, text in rows] for m, rows in json.loads(proc.stdout).items()}


@dataclass
class TextTask:
    """A labelled text-classification task with a stratified train/test split (indices into ``texts``)."""

    name: str
    texts: list[str]
    labels: np.ndarray
    classes: list[str]
    train_idx: np.ndarray
    test_idx: np.ndarray
    source: str

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def fingerprint(self) -> str:
        """Hash of texts, labels and split: part of every cache key (docstrings differ across Python versions)."""
        h = hashlib.sha256()
        for t, y in zip(self.texts, self.labels.tolist()):
            h.update(f"{y}\t{t}\n".encode())
        h.update(self.test_idx.tobytes())
        return h.hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        counts = np.bincount(self.labels, minlength=self.n_classes)
        return {
            "task": self.name,
            "source": self.source,
            "examples": len(self.texts),
            "train": len(self.train_idx),
            "test": len(self.test_idx),
            "classes": dict(zip(self.classes, counts.tolist())),
            "chance_uniform": 1 / self.n_classes,
            "chance_majority_test": float(np.bincount(self.labels[self.test_idx]).max() / len(self.test_idx)),
        }


#: the object kinds of the "kinds" task (a property's docstring counts as a method's)
KINDS = ("class", "function", "method")
TASKS = ("kinds", *(f"topics-{k}" for k in TASK_MODULES))
SOURCE = f"Python {sys.version.split()[0]} standard-library docstrings (first paragraphs)"


def _unique(pairs: Iterable[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """(texts, labels) of (label, text) pairs, keeping each text once and dropping texts that carry two labels."""
    labels: dict[str, set[str]] = {}
    for label, text in pairs:
        labels.setdefault(text, set()).add(label)
    keep = [(text, next(iter(ls))) for text, ls in labels.items() if len(ls) == 1]
    return [t for t, _ in keep], [lab for _, lab in keep]


def topic_task(key: str, n_test_per_class: int, seed: int) -> TextTask:
    """Topic classification: a docstring's first paragraph -> the group of its module (``TASK_MODULES[key]``).

    Texts appearing in more than one group are dropped (no contradictory labels). The test set holds
    ``n_test_per_class`` examples of each class (so chance is 1 / n_classes on it); the rest is training data."""
    groups = TASK_MODULES[key]
    docs = stdlib_docstrings(tuple(m for mods in groups.values() for m in mods))
    texts, labels = _unique((g, text) for g, mods in groups.items() for m in mods for _, text in docs[m])
    classes = list(groups)
    return _split(
        f"topics-{key}",
        texts,
        np.array([classes.index(g) for g in labels]),
        classes,
        n_test_per_class,
        seed,
        SOURCE,
    )


def kind_task(n_test_per_class: int, seed: int) -> TextTask:
    """What does a docstring document: a class, a function or a method? Over every module of ``TASK_MODULES``.

    Topic is no help here (a class and its methods share it), style is (\"Return ...\", \"A ... object that
    ...\"): a frozen sentence encoder + linear head does poorly, fine-tuning much better -- a task that needs
    fine-tuning, as the paper's MNLI does. Texts documenting two kinds are dropped."""
    modules = tuple(m for groups in TASK_MODULES.values() for mods in groups.values() for m in mods)
    docs = stdlib_docstrings(modules)
    pairs = (("method" if kind == "property" else kind, text) for m in modules for kind, text in docs[m])
    texts, labels = _unique((kind, text) for kind, text in pairs if kind in KINDS)
    return _split(
        "kinds",
        texts,
        np.array([KINDS.index(k) for k in labels]),
        list(KINDS),
        n_test_per_class,
        seed,
        SOURCE,
    )


def _split(
    name: str, texts: list[str], labels: np.ndarray, classes: list[str], n_test: int, seed: int, source: str
) -> TextTask:
    """Stratified split: min(n_test, half the smallest class) test examples per class, the rest for training."""
    rng = np.random.default_rng(seed)
    smallest = int(np.bincount(labels, minlength=len(classes)).min())
    n_test = min(n_test, smallest // 2)
    if n_test < 1:
        raise ValueError(f"task {name!r}: a class has {smallest} examples; at least 2 per class are needed")
    test = [rng.choice(np.flatnonzero(labels == c), n_test, replace=False) for c in range(len(classes))]
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(len(texts)), test_idx)
    return TextTask(name, texts, labels, classes, train_idx, test_idx, source)


def hf_task(dataset: str, n_test_per_class: int, seed: int) -> TextTask:  # pragma: no cover - needs network
    """An online alternative: a Hugging Face dataset id ('name' or 'name:config', e.g. 'glue:sst2') with a text
    column ('sentence' or 'text') and an integer 'label' column, loaded with ``datasets`` (its train split)."""
    try:
        import datasets
    except ImportError as err:
        raise ValueError(
            f"task_dataset={dataset!r} needs the `datasets` package and network access (pip install datasets); "
            "leave task_dataset='' for the offline docstring task"
        ) from err
    name, _, config = dataset.partition(":")
    ds = datasets.load_dataset(name, config or None, split="train")
    col = "sentence" if "sentence" in ds.column_names else "text"
    classes = ds.features["label"].names if hasattr(ds.features["label"], "names") else None
    labels = np.array(ds["label"])
    classes = classes or [str(c) for c in sorted(set(labels.tolist()))]
    return _split(
        dataset, list(ds[col]), labels, classes, n_test_per_class, seed, source=f"HF dataset {dataset}"
    )


def build_task(cfg: TaskSettings, name: str) -> TextTask:
    """Task ``name`` (one of ``TASKS``; the target task is ``cfg.task``, or ``cfg.task_dataset`` when set)."""
    if name == cfg.task and cfg.task_dataset:
        return hf_task(cfg.task_dataset, cfg.n_test_per_class, cfg.seed)
    if name == "kinds":
        return kind_task(cfg.n_test_per_class, cfg.seed)
    if name.startswith("topics-") and name[7:] in TASK_MODULES:
        return topic_task(name[7:], cfg.n_test_per_class, cfg.seed)
    raise ValueError(f"task={name!r} is not allowed: expected one of {list(TASKS)}")


def _sentences(paragraphs: Iterable[str]) -> list[str]:
    """Whole sentences (8-40 words, ASCII, ending in . ! or ?) of the given paragraphs, deduplicated and sorted."""
    pool = []
    for para in paragraphs:
        text = re.sub(r"\s+", " ", para).strip()
        for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"'])", text):
            words = s.split()
            if 8 <= len(words) <= 40 and s.isascii() and s[-1] in ".!?":
                pool.append(s)
    return sorted(set(pool))


def news_paragraphs() -> list[str]:
    """The Lee corpus (gensim's test data, installed with the pip package ``gensim`` and read as files -- gensim is
    never imported): 348 short news articles of the Australian Broadcasting Corporation, general English prose far
    from the Python documentation the task is built from; the stand-in for MiniLM's pre-training text."""
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            "the forgetting probe needs the pip package gensim (pip install -r requirements.txt)"
        )
    folder = Path(spec.submodule_search_locations[0]) / "test" / "test_data"
    return [
        line
        for name in ("lee_background.cor", "lee.cor")
        for line in (folder / name).read_text(encoding="utf-8", errors="replace").splitlines()
    ]


def python_doc_paragraphs() -> list[str]:
    """Prose paragraphs of the Python language reference shipped with CPython (``pydoc_data.topics``), code blocks,
    lists and grammar removed: the *in-domain* contrast probe (the task is Python documentation too)."""
    return [
        para
        for key in sorted(topics)
        for para in re.split(r"\n\s*\n", topics[key])
        if not para.startswith(("   ", "\t", "*", ">>>")) and "::" not in para
    ]


PROBES: dict[str, Callable[[], list[str]]] = {"news": news_paragraphs, "pydocs": python_doc_paragraphs}


def probe_sentences(probe: str, n: int, seed: int) -> list[str]:
    """``n`` sentences of the probe text ``probe`` (one of ``PROBES``), drawn without replacement with ``seed``."""
    if probe not in PROBES:
        raise ValueError(f"probe={probe!r} is not allowed: expected one of {sorted(PROBES)}")
    pool = _sentences(PROBES[probe]())
    if n > len(pool):
        raise ValueError(f"n_probe={n} is larger than the {len(pool)} sentences of the {probe!r} probe")
    rng = np.random.default_rng(seed)
    return [pool[i] for i in rng.choice(len(pool), n, replace=False)]


def drop_words(sentence: str, frac: float, rng: np.random.Generator) -> str:
    """A lightly corrupted copy: each word dropped with probability ``frac`` (at least one kept, one dropped)."""
    words = sentence.split()
    keep = rng.random(len(words)) >= frac
    if keep.all():
        keep[rng.integers(len(words))] = False
    if not keep.any():
        keep[rng.integers(len(words))] = True
    return " ".join(w for w, k in zip(words, keep) if k)


@dataclass
class Encoded:
    """Token ids (N, L) padded to ``L`` and the true lengths (N,); batches are cut to their longest example."""

    ids: Tensor
    lengths: Tensor

    def batch(self, idx: Tensor | np.ndarray, device: torch.device) -> tuple[Tensor, Tensor]:
        idx = torch.as_tensor(idx)
        lengths = self.lengths[idx]
        ids = self.ids[idx, : int(lengths.max())]
        mask = (torch.arange(ids.shape[1]) < lengths[:, None]).long()
        return ids.to(device), mask.to(device)


def encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> Encoded:
    """Tokenise ``texts`` (truncated to ``max_length`` tokens, special tokens included)."""
    out = tokenizer(
        list(texts), truncation=True, max_length=max_length, padding="max_length", return_tensors="pt"
    )
    return Encoded(out["input_ids"], out["attention_mask"].sum(1))
