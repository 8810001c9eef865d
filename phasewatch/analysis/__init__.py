"""Offline analysis of a checkpoint series (``phasewatch analyze``): sources, measurement and
replay, the tidy table, and the cache that makes it resumable."""

from phasewatch.analysis.replay import Analysis
from phasewatch.analysis.run import analyze_checkpoints
from phasewatch.analysis.sources import CheckpointSource, checkpoint_sources, step_from_name
from phasewatch.analysis.table import TABLE_CSV, TABLE_PARQUET, read_table

__all__ = [
    "TABLE_CSV",
    "TABLE_PARQUET",
    "Analysis",
    "CheckpointSource",
    "analyze_checkpoints",
    "checkpoint_sources",
    "read_table",
    "step_from_name",
]
