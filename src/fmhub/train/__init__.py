"""``fmhub train``: fine-tune a hub model on a hub dataset and publish the result as a new version.

Example:
    >>> from fmhub.train import TrainConfig, train
    >>> outcome = train(TrainConfig(task="text-classification", model="acme/minilm@v1", data="acme/bbc-news@v1",
    ...                             output="acme/bbc-minilm", epochs=3))
    >>> outcome.commit, outcome.result.metrics["eval_accuracy"]
"""

from fmhub.train._config import SCHEDULES, TrainConfig
from fmhub.train._loop import TrainingDivergedError, TrainResult
from fmhub.train._run import TrainOutcome, train

__all__ = ["TrainConfig", "TrainResult", "TrainOutcome", "TrainingDivergedError", "train", "SCHEDULES"]
