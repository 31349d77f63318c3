"""``fmhub train``: fine-tune a hub model on a hub dataset and publish the result as a new version.

Example:
    >>> from fmhub.train import TrainConfig, train
    >>> config = TrainConfig.from_flat({"task": "text-classification", "model": "acme/minilm@v1",
    ...                                 "data": "acme/bbc-news@v1", "output": "acme/bbc-minilm", "epochs": 3})
    >>> outcome = train(config)
    >>> outcome.commit, outcome.result.metrics["eval_accuracy"]
"""

from fmhub.train._config import (PRECISIONS, SCHEDULES, ComputeOptions, DataOptions, DistillOptions, LoopOptions,
                                 ModelOptions, OptimizerOptions, ScratchOptions, TrainConfig)
from fmhub.train._loop import TrainingDivergedError, TrainResult
from fmhub.train._loop import ResumePoint, resume_point
from fmhub.train._run import TrainingInterrupted, TrainOutcome, train

__all__ = ["TrainConfig", "DataOptions", "OptimizerOptions", "LoopOptions", "ModelOptions", "ScratchOptions",
           "DistillOptions", "ComputeOptions", "TrainResult", "TrainOutcome", "TrainingDivergedError",
           "TrainingInterrupted", "train", "SCHEDULES", "PRECISIONS", "ResumePoint", "resume_point"]
