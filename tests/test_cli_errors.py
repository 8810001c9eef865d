"""The command line prints an error that names the fix as one message, not a traceback."""

from __future__ import annotations

import pytest

from phasewatch.cli import main


def test_a_missing_checkpoint_is_one_message(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PHASEWATCH_TRACEBACK", raising=False)
    missing = tmp_path / "no_such_checkpoints"
    assert main(["analyze", str(missing), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("phasewatch analyze: FileNotFoundError: ")
    assert "no_such_checkpoints" in err and "Traceback" not in err


def test_a_history_that_is_not_there_is_one_message(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("phasewatch report: FileNotFoundError: no phasewatch_history.jsonl")


def test_the_traceback_is_there_on_request(tmp_path, monkeypatch):
    monkeypatch.setenv("PHASEWATCH_TRACEBACK", "1")
    with pytest.raises(FileNotFoundError):
        main(["report", str(tmp_path)])
