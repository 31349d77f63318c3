"""examples/digits/pipeline.yaml, as shipped, on a subset of the digits with a tiny model: import → ResNet from a
config → report card → ONNX int8 → publish gated on accuracy → serve-check; then every step cached. (The full
run is bench/images_bench.py's.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from fmhub.client import Hub
from fmhub.pipeline import parse, run_pipeline

EXAMPLE = Path(__file__).parents[2] / "examples" / "digits"


def test_the_digits_example_on_a_subset(digits_folder: Path, tmp_path: Path) -> None:
    spec = yaml.safe_load((EXAMPLE / "pipeline.yaml").read_text())
    steps = spec["steps"]
    assert [s["kind"] for s in steps.values()] == ["import-data", "train", "eval", "optimize", "publish",
                                                   "serve-check"]
    steps["model"].update(hidden_size=8, layers=2, image_size=16, epochs=4, batch_size=16, learning_rate=0.01)
    steps["prod"]["require"] = {"accuracy": ">= 0.3"}  # the gate a tiny model on 120 images passes
    steps["check"]["rows"] = 12
    folder = tmp_path / "example"
    folder.mkdir()
    shutil.copytree(digits_folder, folder / steps["data"]["source"])
    (folder / "pipeline.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    with Hub.open() as hub:
        first = run_pipeline(parse(folder / "pipeline.yaml"), hub)
        assert [o.status for o in first] == ["ran"] * 6
        outcome = {o.name: o for o in first}
        assert outcome["data"].metrics["rows"] == 120
        assert outcome["card"].metrics["accuracy"] >= 0.3
        assert outcome["check"].metrics == {"agreement": 1.0, "rows": 12.0}
        prod = hub.repo_info("digits/digits-resnet-int8", revision="prod").commit.oid
        assert outcome["prod"].output == f"digits/digits-resnet-int8@{prod}" == outcome["int8"].output
        [card] = [c for c in hub.list_evaluations(model="digits/digits-resnet-int8") if c.card_commit == prod]
        assert card.metrics["accuracy"] >= 0.3 and card.split == "test"
        again = run_pipeline(parse(folder / "pipeline.yaml"), hub)
    assert [o.status for o in again] == ["cached"] * 6 and {o.name: o.output for o in again} == {
        o.name: o.output for o in first}
