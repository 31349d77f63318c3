"""One DDP worker of ``fmhub train --nproc N`` (started by ``torch.distributed.run``; not run by hand).

Reads the job file the launcher wrote (resolved config, resume flag, command line), joins the process
group and trains; rank 0 prints the outcome as one JSON line. A user error exits 2 with its message.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from fmhub.errors import FmhubError
    from fmhub.train import _distributed as distributed
    from fmhub.train._config import TrainConfig
    from fmhub.train._run import train

    job = json.loads(Path(argv[0]).read_text())
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    distributed.init()
    try:
        outcome = train(TrainConfig.from_dict(job["config"]), resume=job["resume"], command=job["command"])
        if outcome is not None:
            print(json.dumps({"commit": outcome.commit, "run": outcome.run_id, "steps": outcome.result.steps,
                              "samples_per_second": outcome.result.samples_per_second, **outcome.result.metrics}),
                  flush=True)
        return 0
    except FmhubError as exc:
        print(f"error (rank {distributed.rank()}): {exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else ""),
              file=sys.stderr, flush=True)
        return 2
    finally:
        distributed.shutdown()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
