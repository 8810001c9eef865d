"""Lazy package attributes (PEP 562): a package's public names are imported on first use.

``import phasewatch.detect`` then costs only what ``phasewatch.detect`` needs, not Lightning,
transformers, torch and matplotlib (about 4 s of import time, docs/performance.md).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any


class _Package(types.ModuleType):
    """A package whose public name wins over a same-named submodule (``measures.head_scores``).

    Importing ``phasewatch.measures.head_scores`` sets the package's ``head_scores`` attribute to
    the module; an eager ``from .head_scores import head_scores`` rebound it to the function, and
    this keeps it the function, as it was.
    """

    _shadowed: frozenset[str] = frozenset()

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._shadowed and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


def lazy_exports(
    package: str, modules: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` for ``package``.

    ``modules`` maps each defining module to the public names it gives the package. Any other
    attribute that names a submodule (``phasewatch.measures``) imports that submodule, as an
    eager ``__init__`` that imported it would have made it available. A public name that is also
    its module's name (``head_scores`` from ``.head_scores``) stays the name, not the module.
    """
    exports = {name: module for module, names in modules.items() for name in names}
    shadowed = frozenset(name for name, module in exports.items() if module == f"{package}.{name}")
    if shadowed:
        sys.modules[package].__class__ = _Package
        types.ModuleType.__setattr__(sys.modules[package], "_shadowed", shadowed)

    def __getattr__(name: str) -> Any:
        module_name = exports.get(name)
        if module_name is not None:
            value = getattr(importlib.import_module(module_name), name)
        elif not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}"):
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)  # later look-ups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
