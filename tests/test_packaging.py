"""The package as researchers install it: pyproject.toml's dependencies and extras name exactly what
requirements.txt pins (so ``pip install -e .[all]`` gives the pinned set), and the ``phenomena`` console script is
the same command line as ``python -m phenomena``."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from phenomena import __main__ as cli
from tests.conftest import REPO

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def canonical(name: str) -> str:
    """PEP 503 normalised name of a requirement, without version, extras or markers."""
    bare = re.split(r"[\s\[<>=!~;]", name.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", bare).lower()


def pinned() -> set[str]:
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return {canonical(line) for line in lines if line.strip() and not line.lstrip().startswith("#")}


def extra(name: str) -> set[str]:
    """The names an extra installs, self-references (``phenomena[a,b]``) expanded."""
    out: set[str] = set()
    for req in PROJECT["optional-dependencies"][name]:
        if canonical(req) == "phenomena":
            for inner in re.search(r"\[(.*)\]", req).group(1).split(","):
                out |= extra(inner.strip())
        else:
            out.add(canonical(req))
    return out


def test_every_pin_is_a_dependency_or_in_an_extra_and_nothing_else() -> None:
    core = {canonical(r) for r in PROJECT["dependencies"]}
    everything = core | extra("all")
    assert pinned() - everything == set(), "pinned in requirements.txt but not in pyproject.toml"
    assert everything - pinned() == set(), "in pyproject.toml but not pinned in requirements.txt"


def test_the_extras_researchers_expect() -> None:
    extras = PROJECT["optional-dependencies"]
    assert {"lora", "notebooks", "cluster", "test", "all"} <= set(extras)
    assert {"transformers", "peft"} <= extra("lora") and "ipywidgets" in extra("notebooks")
    assert "submitit" in extra("cluster") and "mlxtend" in {canonical(r) for r in PROJECT["dependencies"]}
    others = set(extras) - {"all"}
    assert extra("all") == set().union(*(extra(e) for e in others)), "all must be the union of the extras"


def test_the_console_script_is_python_m_phenomena(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert PROJECT["scripts"] == {"phenomena": "phenomena.__main__:main"}
    assert cli.main(["list"]) == 0
    assert "induction_heads" in capsys.readouterr().out
    with pytest.raises(SystemExit) as help_exit:
        cli.main(["--help"])
    assert help_exit.value.code == 0
    commands = capsys.readouterr().out
    assert all(c in commands for c in ("run", "sweep", "aggregate", "figures", "report"))
    assert cli.main(["report", "--root", str(tmp_path / "empty"), "--out", str(tmp_path / "site")]) == 2
    assert "run `make figures`" in capsys.readouterr().err
