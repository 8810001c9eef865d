"""The README's corpus example runs as written and prints what its comments say."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from phasewatch.corpora import registry

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_block_after(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_reading_time_corpora_example(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    exec(compile(_python_block_after("## Reading-time corpora"), "README.md", "exec"), {})
    out = capsys.readouterr().out.split()
    assert out[out.index("Der") + 1 : out.index("Der") + 3] == ["200.0", "2"]
    assert out[out.index("Hund") + 1 : out.index("Hund") + 3] == ["260.0", "1"]
    assert out[-1] == "2"
    assert "mine" in registry.registered_corpora()


@pytest.mark.parametrize("name", ["provo", "geco", "geco-nl", "ucl", "ucl-spr", "brown"])
def test_the_corpora_the_readme_names_are_registered(name):
    assert name in registry.reading_time_corpora()
