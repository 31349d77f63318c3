"""The runs domain's tables: training runs and their metrics (migration 0003), pipeline step records (0005).

Declared on the store's shared :data:`fmhub.store.metadata`, so the one Alembic history creates them beside
the repos; only :mod:`fmhub.runs` reads and writes them.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Double, ForeignKey, Index, Integer, String, Table, Text

from fmhub.store import metadata

__all__ = ["runs", "run_metrics", "pipeline_steps"]

# A training run: what went in (base model and dataset as repo + commit, the resolved config, the command),
# where it ran (code and library versions, hardware) and what came out (output repo + commit, final
# metrics). Repo ids are copied, not referenced, so a run outlives the repos it names (as audit_log).
runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),  # "r-" + 12 hex
    Column("name", String(255), nullable=False),
    Column("task", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # "running" | "completed" | "failed" | "stopped"
    Column("config", Text, nullable=False),  # JSON object: the resolved config
    Column("command", Text, nullable=False),
    Column("base_model", String(200), nullable=True),
    Column("base_commit", String(40), nullable=True),
    Column("dataset", String(200), nullable=True),
    Column("dataset_commit", String(40), nullable=True),
    Column("output", String(200), nullable=True),
    Column("output_commit", String(40), nullable=True),  # set when the output is published
    Column("code_version", String(64), nullable=False),
    Column("libraries", Text, nullable=False),  # JSON object: name -> version
    Column("hardware", Text, nullable=False),  # JSON object: cpu, cores, ram_gib, gpus
    Column("created_by", String(255), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("summary", Text, nullable=True),  # JSON object: final metrics
    Index(None, "started_at"),
)

# One row per (run, step, metric); only finite values are stored.
run_metrics = Table(
    "run_metrics",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("step", Integer, nullable=False),
    Column("epoch", Double, nullable=True),
    Column("key", String(255), nullable=False),
    Column("value", Double, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index(None, "run_id", "key", "step"),
)


# What a pipeline step produced for a key (sha256 of its kind, resolved options and inputs' commits):
# fmhub run skips a step whose key is here and whose output commit still exists.
pipeline_steps = Table(
    "pipeline_steps",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("pipeline", String(200), nullable=False),
    Column("step", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("output", String(300), nullable=False),  # repo@commit
    Column("metrics", Text, nullable=False),  # JSON
    Column("detail", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
