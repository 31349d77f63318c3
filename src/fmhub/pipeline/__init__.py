"""``fmhub run PIPELINE.yaml``: the lifecycle as one declarative, cached, resumable pipeline.

Example:
    >>> from fmhub.pipeline import parse, run_pipeline
    >>> from fmhub.client import Hub
    >>> with Hub.open() as hub:
    ...     outcomes = run_pipeline(parse("examples/tiny/pipeline.yaml"), hub)
"""

from fmhub.pipeline._run import StepOutcome, lineage_lines, run_pipeline, step_key
from fmhub.pipeline._spec import KINDS, Pipeline, PipelineError, Step, parse
from fmhub.pipeline._steps import GateError, check_requirements

__all__ = ["parse", "run_pipeline", "Pipeline", "Step", "StepOutcome", "PipelineError", "GateError", "KINDS",
           "step_key", "lineage_lines", "check_requirements"]
