"""Lazy package attributes (PEP 562): a package's public names are imported on first use.

``import phasewatch.detect`` then costs only what ``phasewatch.detect`` needs, not Lightning,
transformers, torch and matplotlib (about 4 s of import time, docs/performance.md).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str, modules: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module ``__getattr__`` and ``__dir__`` for ``package``.

    ``modules`` maps each defining module to the public names it gives the package. Any other
    attribute that names a submodule (``phasewatch.measures``) imports that submodule, as an
    eager ``__init__`` that imported it would have made it available. A public name that is also
    a submodule's name must stay an eager import: importing the submodule would shadow it.
    """
    exports = {name: module for module, names in modules.items() for name in names}

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
