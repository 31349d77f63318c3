"""The CLI reference (docs/cli.md and the README's command table) is generated from the commands' --help
and must be current; a new or changed option without `make docs` fails here."""

from __future__ import annotations

from pathlib import Path

from fmhub.cli import app
from fmhub.cli._reference import README_BEGIN, command_table, commands, main, reference, render_readme

ROOT = Path(__file__).parents[2]


def test_the_committed_reference_is_current(capsys) -> None:
    assert main(["--root", str(ROOT), "--check"]) == 0, capsys.readouterr().err


def test_every_command_and_option_is_documented() -> None:
    text = reference(app)
    names = [name for name, _command, _ctx in commands(app)]
    assert {"fmhub upload", "fmhub train", "fmhub serve", "fmhub run", "fmhub optimize distill"} <= set(names)
    for name, command, ctx in commands(app):
        assert f"## `{name}`" in text and f"docs/cli.md#{name.replace(' ', '-')}" in command_table(app)
        for param in command.get_params(ctx):
            record = param.get_help_record(ctx)
            if record and param.name != "help":
                assert f"`{record[0].replace('|', chr(92) + '|')}`" in text, (name, record[0])


def test_a_stale_file_is_reported_and_written(tmp_path: Path, capsys) -> None:
    (tmp_path / "README.md").write_text(f"# x\n\n{README_BEGIN}\n| old |\n<!-- /cli-reference -->\n\nafter\n")
    assert main(["--root", str(tmp_path), "--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert not (tmp_path / "docs").exists()  # --check writes nothing
    assert main(["--root", str(tmp_path)]) == 0
    readme = (tmp_path / "README.md").read_text()
    assert "| old |" not in readme and "[`fmhub train`](docs/cli.md#fmhub-train)" in readme
    assert readme.endswith("<!-- /cli-reference -->\n\nafter\n")
    assert (tmp_path / "docs" / "cli.md").read_text() == reference(app)
    assert main(["--root", str(tmp_path), "--check"]) == 0
    assert render_readme(readme, app) == readme


def test_a_folder_without_the_readme_or_its_markers_is_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["--root", str(tmp_path)]) == 2
    assert "README.md" in capsys.readouterr().err
    (tmp_path / "README.md").write_text("# no markers\n")
    assert main(["--root", str(tmp_path), "--check"]) == 2
    assert "lacks the markers" in capsys.readouterr().err and not (tmp_path / "docs").exists()
