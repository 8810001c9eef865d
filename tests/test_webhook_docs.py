"""docs/alerts.md's examples run as written: the Python block sends one alert to its local
server, the YAML block configures a WebhookNotifier from the environment."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from lightning_helpers import TinyLM

from phasewatch.callbacks import WebhookNotifier
from phasewatch.callbacks.transition import PhaseTransitionWarning

DOC = Path(__file__).resolve().parents[1] / "docs" / "alerts.md"


def _block_after(heading: str, language: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)


def test_the_python_example_sends_one_alert(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PhaseTransitionWarning)
        exec(compile(_block_after("### From Python", "python"), "docs/alerts.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[-2] == "1 transition 20"
    assert out[-1].startswith("phasewatch: phase transition in planted/score at step 20 (")
    assert "secret" not in "\n".join(out)


def test_the_yaml_example_builds_the_notifier_from_the_environment(tmp_path, monkeypatch):
    from lightning.pytorch.cli import LightningCLI

    monkeypatch.setenv("PHASEWATCH_WEBHOOK_URL", "https://hooks.example.com/services/T/B/secret")
    config = tmp_path / "config.yaml"
    config.write_text(_block_after("### From LightningCLI YAML", "yaml"))
    cli = LightningCLI(TinyLM, run=False, args=["--config", str(config)])
    (notifier,) = [c for c in cli.trainer.callbacks if isinstance(c, WebhookNotifier)]
    assert (notifier.host, notifier.timeout, notifier.retries) == ("hooks.example.com", 5.0, 3)
