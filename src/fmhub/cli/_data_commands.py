"""``fmhub data import``: turn a raw source into a versioned, documented dataset repository."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fmhub.cli._common import EndpointOption, TokenOption, console, err_console, opened_hub

data_app = typer.Typer(help="Datasets: import sources as versioned Parquet + card + quality report.",
                       no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


@data_app.command("import")
def import_command(
    source: Annotated[Path, typer.Argument(help="A .csv/.tsv/.jsonl/.parquet/.conll file, a folder of such files "
                                                "(train.csv, test.csv...), a folder of <label>/*.txt, or images: a "
                                                "folder of <label>/<image> (or <split>/<label>/<image>), a table of "
                                                "image paths, Parquet with image bytes.", show_default=False)],
    repo_id: Annotated[str, typer.Argument(help="The dataset repo (namespace/name); created if missing.",
                                           show_default=False)],
    split: Annotated[str, typer.Option("--split", help="Split recipe when the source has none: name=fraction,...")
                     ] = "train=0.8,validation=0.1,test=0.1",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split: same seed, same rows per split.")] = 0,
    text_column: Annotated[str | None, typer.Option("--text-column", help="Column holding the text "
                                                                          "(default: text).")] = None,
    label_column: Annotated[str | None, typer.Option("--label-column", help="Column holding the label "
                                                                            "(default: label, if present; else labels "
                                                                            "when it holds lists).")] = None,
    label_separator: Annotated[str | None, typer.Option(
        "--label-separator", metavar="SEP",
        help="Multi-label CSV/TSV: split each label cell on SEP (e.g. '|' for sport|politics); an empty cell "
             "means no labels. JSON Lines/Parquet label columns of lists are multi-label without it.")] = None,
    image_column: Annotated[str | None, typer.Option("--image-column", help="Images: the table's column of image "
                                                                            "paths (relative to the table's folder), "
                                                                            "or the Parquet column of image bytes "
                                                                            "(default: image, image_path, file_name, "
                                                                            "filepath or path).")] = None,
    max_image_pixels: Annotated[int | None, typer.Option("--max-image-pixels", min=1, help="Images: an image with "
                                                         "more pixels stops the import, refused before it is decoded "
                                                         "\\[default: 89,478,485, Pillow's decompression-bomb "
                                                         "threshold].")] = None,
    similar_images: Annotated[int | None, typer.Option("--similar-images", min=0, max=16, metavar="BITS", help="Images: "
                                                       "also report images across splits whose 64-bit perceptual "
                                                       "hashes differ in at most BITS bits (e.g. 6).")] = None,
    tokens_column: Annotated[str | None, typer.Option("--tokens-column", help="Column of token lists "
                                                                              "(token classification).")] = None,
    tags_column: Annotated[str | None, typer.Option("--tags-column", help="Column of tag lists (default: tags)."
                                                    )] = None,
    split_column: Annotated[str | None, typer.Option("--split-column", help="Column naming each row's split "
                                                                            "(default: split, if present).")] = None,
    conll_token_col: Annotated[int, typer.Option("--conll-token-col", help="CoNLL: whitespace-separated column of "
                                                                           "the token (0 = first).")] = 0,
    conll_tag_col: Annotated[int, typer.Option("--conll-tag-col", help="CoNLL: column of the tag (-1 = last, "
                                                                       "e.g. 3 for CoNLL-2003 NER).")] = -1,
    encoding: Annotated[str | None, typer.Option("--encoding", help="Text encoding (default: detected).")] = None,
    source_format: Annotated[str | None, typer.Option("--format", help="csv|tsv|jsonl|parquet|folder|conll|"
                                                                       "imagefolder (default: from the name).")] = None,
    redact_pii: Annotated[bool, typer.Option("--redact-pii", help="Replace e-mails, phones, IPs, card numbers and "
                                                                  "IBANs with [EMAIL]-style placeholders.")] = False,
    minhash: Annotated[bool, typer.Option("--minhash", help="Also find similar texts across splits (same article "
                                                            "with small edits) by MinHash of word 3-grams.")] = False,
    minhash_threshold: Annotated[float, typer.Option("--minhash-threshold", min=0.05, max=1.0,
                                                     help="Least estimated Jaccard similarity that counts as "
                                                          "similar (with --minhash).")] = 0.8,
    license_id: Annotated[str | None, typer.Option("--license", help="License id for the card, e.g. cc-by-4.0.")
                          ] = None,
    source_name: Annotated[str | None, typer.Option("--source-name", help="Where the data comes from, for the card's "
                                                                          "source (default: the file or folder name)."
                                                    )] = None,
    private: Annotated[bool, typer.Option("--private", help="Create the repo private.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when leakage across splits or label conflicts "
                                                          "are found (the import is still committed).")] = False,
    message: Annotated[str | None, typer.Option("--message", "-m", help="Commit title.")] = None,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> int:
    """Import a source as one commit: data/{split}-NNNNN-of-NNNNN.parquet, README.md card, quality.json.

    Example:
        fmhub data import reviews.csv acme/reviews --text-column body --label-column stars --redact-pii
        fmhub data import ./bbc/data acme/bbc-news --license cc-by-4.0   # <label>/*.txt folders
        fmhub data import topics.csv acme/topics --label-separator '|'     # multi-label: sport|politics
        fmhub data import ./pets acme/pets --similar-images 6              # images: <label>/<image> folders
    """
    from fmhub.data._import import ImportOptions, import_dataset
    from fmhub.data._quality import render_quality

    options = ImportOptions(split=split, seed=seed, encoding=encoding, format=source_format, text_column=text_column,
                            label_column=label_column, label_separator=label_separator,
                            tokens_column=tokens_column, tags_column=tags_column,
                            split_column=split_column, conll_token_col=conll_token_col,
                            conll_tag_col=conll_tag_col, redact_pii=redact_pii, image_column=image_column,
                            max_image_pixels=max_image_pixels, similar_images=similar_images,
                            minhash=minhash_threshold if minhash else None, source_name=source_name, license=license_id, private=private,
                            message=message)
    with opened_hub(endpoint, token) as hub:
        result = import_dataset(hub, source, repo_id, options)
    render_quality(result.quality, console)
    if redact_pii:
        found = ", ".join(f"{kind} {count}" for kind, count in sorted(result.pii_counts.items()) if count)
        err_console.print(f"PII redacted: {found or 'none found'}")
    sizes = ", ".join(f"{name} {rows}" for name, rows in result.splits.items())
    console.print(f"committed {result.commit.oid} to {repo_id} (dataset): {sizes}")
    if strict and result.quality.has_blocking_problems:
        for problem in result.quality.problems():
            err_console.print(f"[bold red]problem:[/] {problem}", highlight=False)
        return 1
    return 0
