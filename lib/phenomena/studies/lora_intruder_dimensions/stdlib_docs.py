"""Docstrings of standard-library modules, read in a clean interpreter (the LoRA study's offline text data).

Run as a script (``python -I -S stdlib_docs.py MODULE ...``) it prints ``{module: [first paragraphs]}`` as JSON. The
LoRA study calls it in a subprocess on purpose: inside a notebook, third-party packages patch stdlib objects (for
example ``transformers`` adds methods to ``logging.Logger``) and lazy attributes appear once accessed, so reading the
docstrings in-process would make the data set depend on what happened to be imported before. This file imports only
the standard library.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
import warnings


def first_paragraph(doc: str | None) -> str | None:
    """The first paragraph of a docstring, whitespace-normalised; None if shorter than 4 words."""
    if not doc:
        return None
    para = re.sub(r"\s+", " ", inspect.cleandoc(doc).split("\n\n")[0]).strip()
    return para if len(para.split()) >= 4 else None


def module_docstrings(modname: str) -> list[tuple[str, str]]:
    """(kind, first paragraph) of the docstrings of a module, its public functions and classes and their public
    methods and properties, in definition order; kind is module, function, class, method or property. Objects
    imported from other top-level packages are skipped."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mod = importlib.import_module(modname)
    except ImportError:
        return []
    top = modname.split(".")[0]
    out = [("module", first_paragraph(mod.__doc__))]
    for name, obj in vars(mod).items():
        owner = str(getattr(obj, "__module__", "") or "")
        if name.startswith("_") or not owner.lstrip("_").startswith(top):
            continue
        if inspect.isfunction(obj) or inspect.isbuiltin(obj):
            out.append(("function", first_paragraph(obj.__doc__)))
        elif inspect.isclass(obj):
            out.append(("class", first_paragraph(obj.__doc__)))
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if isinstance(member, property):
                    out.append(("property", first_paragraph(member.__doc__)))
                elif callable(member):
                    out.append(("method", first_paragraph(getattr(member, "__doc__", None))))
    return [(kind, text) for kind, text in out if text]


if __name__ == "__main__":
    json.dump({m: module_docstrings(m) for m in sys.argv[1:]}, sys.stdout)
