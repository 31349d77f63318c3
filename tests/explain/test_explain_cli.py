"""``fmhub explain`` from the command line: coloured terminal output, JSON, the HTML export, exit code 2 with
the fix for bad input."""

from __future__ import annotations

import html.parser
import json

from fmhub.cli import main

KEYWORD = "robot"


def test_cli_prints_json_and_writes_html(keyword_model: str, keyword_data: str, tmp_path, capsys) -> None:
    page = tmp_path / "why.html"
    code = main(["explain", keyword_model, "--text", "goal robot match", "--text", "chip data", "--json",
                 "--faithfulness", "--html", str(page)])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    first, second = out["explanations"]
    assert out["model"]["repo"] == keyword_model and out["model"]["format"] == "torch"
    assert first["label"] == "yes" and first["units"][first["scores"].index(max(first["scores"]))] == KEYWORD
    assert first["completeness"]["holds"] and first["faithfulness"]["comprehensiveness"] > 0
    assert second["label"] == "no" and second["source"] == "chip data"
    text = page.read_text()
    html.parser.HTMLParser().feed(text)
    assert text.count("<mark") == 5 and f'title="{KEYWORD}:' in text and "completeness holds" in text

    assert main(["explain", keyword_model, "--data", keyword_data, "--rows", "2", "--method", "occlusion"]) == 0
    shown = capsys.readouterr().out
    assert "gold" in shown and "top token" in shown and "occlusion" in shown


def test_cli_bad_input_exits_2_with_the_fix(keyword_model: str, capsys) -> None:
    assert main(["explain", keyword_model]) == 2
    assert "exactly one of --text, --image or --data" in capsys.readouterr().err
    assert main(["explain", keyword_model, "--text", "robot", "--method", "shap"]) == 2
    assert "choose from integrated-gradients, occlusion, attention-rollout" in capsys.readouterr().err
    assert main(["explain", keyword_model, "--text", "robot", "--steps", "1"]) == 2
    assert main(["explain", "acme/keyword-clf", "--data", "acme/keyword", "--split", "dev"]) == 2
    assert "no 'dev' split" in capsys.readouterr().err
