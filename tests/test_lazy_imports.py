"""Light subpackages stay light: ``import phasewatch.detect`` / ``phasewatch.corpora`` load no
Lightning, transformers or torch, and every public name is still importable as before (issue 12).

Each check runs in a fresh interpreter: this test process has long imported everything.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import phasewatch

HEAVY = ("lightning", "pytorch_lightning", "lightning_fabric", "transformers", "torch")

# The public names of `phasewatch` before the lazy __init__, with the module each came from.
PUBLIC = {
    "AttentionModel": "phasewatch.models",
    "AttentionMonitor": "phasewatch.callbacks",
    "CorpusDataError": "phasewatch.corpora",
    "MeasureSchedule": "phasewatch.callbacks",
    "PPPMonitor": "phasewatch.callbacks",
    "PPPResult": "phasewatch.measures",
    "PeakEvent": "phasewatch.detect",
    "PeakMonitor": "phasewatch.callbacks",
    "PeakTracker": "phasewatch.detect",
    "PhaseTransitionWarning": "phasewatch.callbacks",
    "PhasewatchMonitor": "phasewatch.callbacks",
    "ProbeModel": "phasewatch.models",
    "ReadingTimeCorpus": "phasewatch.corpora",
    "TransitionDetector": "phasewatch.detect",
    "TransitionEvent": "phasewatch.detect",
    "TransitionMonitor": "phasewatch.callbacks",
    "WebhookNotifier": "phasewatch.callbacks",  # issue 13
    "WebhookWarning": "phasewatch.callbacks",  # issue 13
    "all_head_scores": "phasewatch.measures",
    "as_probe_model": "phasewatch.models",
    "attention_entropy": "phasewatch.measures",
    "delta_loglik": "phasewatch.measures",
    "detect_transitions": "phasewatch.detect",
    "head_scores": "phasewatch.measures",
    "load": "phasewatch.corpora",
    "load_tsv": "phasewatch.corpora",
    "syntactic_scores": "phasewatch.measures",
    "word_surprisal": "phasewatch.measures",
}


def _fresh(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON line, returned parsed."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _heavy_after(statement: str) -> list[str]:
    code = (
        f"import json, sys\n{statement}\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    )
    return _fresh(code)


@pytest.mark.parametrize(
    "statement",
    [
        "import phasewatch",
        "import phasewatch.detect",
        "import phasewatch.corpora",
        "from phasewatch.detect import TransitionDetector, detect_transitions",
        "from phasewatch import TransitionDetector, load_tsv, CorpusDataError",
        # the PPP regression is numpy/pandas: no torch for it either
        "import phasewatch.measures.delta_loglik",
        "from phasewatch import PPPResult, delta_loglik",
    ],
)
def test_light_imports_load_no_lightning_transformers_or_torch(statement: str) -> None:
    assert _heavy_after(statement) == []


def test_the_model_protocol_loads_no_transformers() -> None:
    assert _heavy_after("from phasewatch.models import AttentionModel") == ["torch"]


def test_a_heavy_name_still_loads_what_it_needs() -> None:
    # the check above can see Lightning when it is there: asking for a callback loads it
    assert "lightning" in _heavy_after("from phasewatch import PPPMonitor")


def test_every_public_name_is_the_object_it_was() -> None:
    # Submodules first, so a public name shadowed by a same-named submodule would show here.
    code = (
        f"names = {PUBLIC!r}\n"
        + """
import importlib, json, pkgutil
import phasewatch
for info in pkgutil.walk_packages(phasewatch.__path__, "phasewatch."):
    if not info.name.startswith(("phasewatch.demo", "phasewatch.cli")):
        importlib.import_module(info.name)
star = {}
exec("from phasewatch import *", star)
print(json.dumps({
    "same": [n for n, m in names.items()
             if getattr(phasewatch, n) is getattr(importlib.import_module(m), n)],
    "star": sorted(n for n in star if not n.startswith("__") or n == "__version__"),
    "all": sorted(phasewatch.__all__),
    "dir_has_all": set(phasewatch.__all__) <= set(dir(phasewatch)),
}))
"""
    )
    result = _fresh(code)
    assert result["same"] == list(PUBLIC)
    assert result["all"] == sorted([*PUBLIC, "__version__"])
    assert result["star"] == result["all"]
    assert result["dir_has_all"]


def test_submodules_are_attributes_and_unknown_names_fail_clearly() -> None:
    result = _fresh(
        "import json, phasewatch\n"
        "try:\n    phasewatch.no_such_thing\n    err = ''\n"
        "except AttributeError as e:\n    err = str(e)\n"
        "print(json.dumps([phasewatch.detect.__name__, phasewatch.keys.__name__, err]))"
    )
    assert result == [
        "phasewatch.detect",
        "phasewatch.keys",
        "module 'phasewatch' has no attribute 'no_such_thing'",
    ]


def _typed_imports(package: str) -> dict[str, str]:
    """name -> module of the ``if TYPE_CHECKING:`` imports in ``package``'s ``__init__``: the
    eager imports it had before, which the lazy names must reproduce."""
    init = Path(phasewatch.__file__).parent.joinpath(*package.split(".")[1:], "__init__.py")
    tree = ast.parse(init.read_text(encoding="utf-8"))
    guarded = next(n for n in tree.body if isinstance(n, ast.If))
    return {a.name: node.module for node in guarded.body for a in node.names}


def test_type_checking_imports_match_the_lazy_names() -> None:
    # Type checkers read the `if TYPE_CHECKING:` imports; the runtime reads the lazy table.
    assert _typed_imports("phasewatch") == PUBLIC


@pytest.mark.parametrize("package", ["phasewatch.measures", "phasewatch.models"])
@pytest.mark.parametrize("submodules_first", [True, False])
def test_lazy_subpackage_names_are_the_objects_they_were(
    package: str, submodules_first: bool
) -> None:
    # `measures.head_scores` is both a function and its module: importing the module (first or
    # after) must leave the package's name the function, as the eager import did.
    names = _typed_imports(package)
    code = (
        f"names = {names!r}\nfirst = {submodules_first!r}\n"
        + f"""
import importlib, json, pkgutil
import {package} as package
modules = [i.name for i in pkgutil.iter_modules(package.__path__, "{package}.")]
if first:
    for m in modules:
        importlib.import_module(m)
"""
        + """
got = {n: getattr(package, n) for n in names}
for m in modules:
    importlib.import_module(m)
print(json.dumps({
    "same": [n for n, m in names.items() if got[n] is getattr(importlib.import_module(m), n)
             and getattr(package, n) is got[n]],
    "all": sorted(package.__all__),
}))
"""
    )
    result = _fresh(code)
    assert result["same"] == list(names)
    assert result["all"] == sorted(names)
