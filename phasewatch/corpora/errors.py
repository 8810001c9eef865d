"""The one exception for corpus files that are missing, corrupt or unreadable."""

from __future__ import annotations

from pathlib import Path


class CorpusDataError(Exception):
    """A corpus file is missing, does not match its manifest, or cannot be parsed.

    The message names the file, what was expected (size and sha256, or a format), what was found,
    and how to fix it. The same pieces are kept as attributes for programs: ``path``, ``problem``,
    ``expected``, ``found``, ``fix``.
    """

    def __init__(
        self,
        path: str | Path,
        problem: str,
        *,
        expected: str = "",
        found: str = "",
        fix: str = "",
    ) -> None:
        self.path = Path(path)
        self.problem = problem
        self.expected = expected
        self.found = found
        self.fix = fix
        lines = [f"{self.path}: {problem}"]
        lines += [f"  expected: {expected}"] if expected else []
        lines += [f"  found:    {found}"] if found else []
        lines += [f"  to fix:   {fix}"] if fix else []
        super().__init__("\n".join(lines))
