"""CITATION.cff: it parses as Citation File Format 1.2.0, and its references list the papers of every study.

Each reference names the study that reproduces it in its ``keywords``. Every study must have at least one; every
arXiv paper a study's package or notebook cites by number must be among its references; and every reference's
first author must be named in that study's notebook, so the citation file and the notebooks tell the same story.
"""

from __future__ import annotations

import re
from typing import Any

import nbformat
import pytest
import yaml

from phenomena import studies
from tests.conftest import REPO

CFF = REPO / "CITATION.cff"
ARXIV = re.compile(r"(?:arXiv[: ]|arxiv\.org/abs/)(\d{4}\.\d{4,5})")


@pytest.fixture(scope="module")
def cff() -> dict[str, Any]:
    return yaml.safe_load(CFF.read_text(encoding="utf-8"))


def refs_of(cff: dict[str, Any], study: str) -> list[dict[str, Any]]:
    return [r for r in cff["references"] if study in r.get("keywords", [])]


def notebook_text(study: str) -> str:
    nb = nbformat.read(REPO / "notebooks" / f"{study}.ipynb", as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def package_text(study: str) -> str:
    return "\n".join(p.read_text() for p in (REPO / "lib" / "phenomena" / "studies" / study).glob("*.py"))


def test_citation_file_has_the_required_fields(cff: dict[str, Any]) -> None:
    assert cff["cff-version"] == "1.2.0"
    assert cff["message"] and cff["title"] and cff["authors"]
    assert cff["license"] == "MIT"
    project = (REPO / "pyproject.toml").read_text()
    assert f'version = "{cff["version"]}"' in project, (
        "CITATION.cff and pyproject.toml disagree on the version"
    )
    for ref in cff["references"]:
        assert ref["type"] in ("article", "book", "generic"), ref["title"]
        assert ref["title"] and ref["authors"] and isinstance(ref["year"], int), ref
        assert all("family-names" in a or "name" in a for a in ref["authors"]), ref["title"]
        assert ref.get("url") or ref.get("identifiers"), f"{ref['title']}: no URL or DOI"
        assert set(ref.get("keywords", [])) <= set(studies.names()), f"{ref['title']}: unknown study"


@pytest.mark.parametrize("study", studies.names())
def test_every_study_lists_its_papers(cff: dict[str, Any], study: str) -> None:
    refs = refs_of(cff, study)
    assert refs, f"CITATION.cff has no reference with keywords: [{study}]"
    cited = set(ARXIV.findall(package_text(study) + notebook_text(study)))
    listed = {m for r in refs for m in ARXIV.findall(str(r.get("url", "")) + str(r.get("identifiers", "")))}
    listed |= {i["value"].removeprefix("10.48550/arXiv.") for r in refs for i in r.get("identifiers", [])}
    assert cited <= listed, f"{study} cites arXiv {sorted(cited - listed)}, missing from CITATION.cff"
    text = notebook_text(study)
    for ref in refs:
        first = ref["authors"][0].get("family-names", "")
        assert first in text, f"{ref['title']}: its first author {first} is not named in the {study} notebook"
