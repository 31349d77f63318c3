"""``fmhub train``: fine-tune a hub model on a hub dataset; the result is a new version of the output repo."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from fmhub.cli._common import (EndpointOption, TokenOption, WorkProgress, console, err_console, opened_hub,
                               quiet_ml_libraries)
from fmhub.errors import InvalidInputError


def register(app: typer.Typer) -> None:
    app.command("train", no_args_is_help=True)(train_command)


def train_command(
    task: Annotated[str | None, typer.Option("--task", help="What to train: text-classification, token-classification "
                                                            "(NER, BIO tags), masked-lm or causal-lm.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Base model repo, REPO or REPO@REVISION (omit with "
                                                              "--architecture/--from-config).")] = None,
    data: Annotated[str | None, typer.Option("--data", help="Dataset repo, REPO or REPO@REVISION (from fmhub data "
                                                            "import).")] = None,
    output: Annotated[str | None, typer.Option("--output", help="Model repo the result is committed to (created if "
                                                                "missing).")] = None,
    config_file: Annotated[Path | None, typer.Option("--config", "-c", help="A train.yaml with any of these options "
                                                                            "(flags given here win).")] = None,
    text_column: Annotated[str | None, typer.Option("--text-column", help="Dataset column of the text \\[default: "
                                                                          "text; token classification: tokens].")
                           ] = None,
    label_column: Annotated[str | None, typer.Option("--label-column", help="Dataset column of the class label "
                                                                            "\\[default: label; token "
                                                                            "classification: tags].")] = None,
    multi_label: Annotated[bool | None, typer.Option("--multi-label", help="Text classification with any number of "
                                                     "labels per row (a column of label lists; sigmoid per label).",
                                                     show_default=False)] = None,
    train_split: Annotated[str | None, typer.Option("--train-split", help="Split to train on \\[default: train].")
                           ] = None,
    eval_split: Annotated[str | None, typer.Option("--eval-split", help="Split to evaluate on, or 'none' "
                                                                        "\\[default: validation].")] = None,
    learning_rate: Annotated[float | None, typer.Option("--learning-rate", "--lr", help="Peak learning rate of AdamW "
                                                                                       "\\[default: 5e-5].")] = None,
    schedule: Annotated[str | None, typer.Option("--schedule", help="Learning-rate schedule after warmup: linear, "
                                                                    "cosine or constant \\[default: linear].")] = None,
    warmup_ratio: Annotated[float | None, typer.Option("--warmup-ratio", help="Share of the steps spent warming up "
                                                                              "\\[default: 0].")] = None,
    epochs: Annotated[float | None, typer.Option("--epochs", help="Passes over the training split \\[default: 3].")
                      ] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="Optimizer steps to run (overrides --epochs).")
                         ] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Rows per forward pass \\[default: 16].")
                          ] = None,
    gradient_accumulation: Annotated[int | None, typer.Option("--gradient-accumulation", help="Forward passes per "
                                                              "optimizer step \\[default: 1].")] = None,
    max_length: Annotated[int | None, typer.Option("--max-length", help="Tokens per text, truncated beyond "
                                                                        "\\[default: 256].")] = None,
    weight_decay: Annotated[float | None, typer.Option("--weight-decay", help="AdamW weight decay (not on biases "
                                                                              "and norms) \\[default: 0.01].")] = None,
    max_grad_norm: Annotated[float | None, typer.Option("--max-grad-norm", help="Gradient clipping norm, 0 for none "
                                                                                "\\[default: 1.0].")] = None,
    label_smoothing: Annotated[float | None, typer.Option("--label-smoothing", help="Cross-entropy label smoothing "
                                                                                    "\\[default: 0].")] = None,
    attention_dropout: Annotated[str | None, typer.Option("--attention-dropout", help="Dropout on attention "
                                                          "probabilities while training, or 'model' to keep the "
                                                          "model's value \\[default: 0: PyTorch's fused CPU attention "
                                                          "has no dropout, so other values train ~1.7x slower]."
                                                          )] = None,
    class_weights: Annotated[bool | None, typer.Option("--class-weights/--no-class-weights", help="Weight the loss "
                                                       "by inverse label frequency (imbalanced data).",
                                                       show_default=False)] = None,
    freeze: Annotated[str | None, typer.Option("--freeze", help="Keep a part of the model fixed: embeddings "
                                                                "(YAML: freeze_embeddings: true).")] = None,
    freeze_layers: Annotated[int | None, typer.Option("--freeze-layers", help="Keep the first N encoder layers fixed "
                                                                              "\\[default: 0].")] = None,
    eval_steps: Annotated[int | None, typer.Option("--eval-steps", help="Evaluate every N steps (always at each "
                                                                        "epoch end).")] = None,
    save_steps: Annotated[int | None, typer.Option("--save-steps", help="Checkpoint every N steps (always at each "
                                                                        "epoch end).")] = None,
    early_stopping_patience: Annotated[int | None, typer.Option("--early-stopping-patience", help="Stop after N "
                                                                "evaluations without a better --metric.")] = None,
    metric: Annotated[str | None, typer.Option("--metric", help="Validation metric for early stopping: accuracy or "
                                                                "f1_macro; for token classification f1, precision, "
                                                                "recall or accuracy \\[default: accuracy; f1].")
                        ] = None,
    load_best_at_end: Annotated[bool | None, typer.Option("--load-best-at-end", help="Publish the weights of the "
                                                          "best evaluation by --metric instead of the last "
                                                          "(a checkpoint at every evaluation).", show_default=False)
                                ] = None,
    ignore_mismatched_sizes: Annotated[bool | None, typer.Option("--ignore-mismatched-sizes", help="Replace a base "
                                                                 "classifier head whose labels differ from the "
                                                                 "dataset's.", show_default=False)] = None,
    teacher: Annotated[str | None, typer.Option("--teacher", help="Distill: a classifier (REPO or REPO@REV) whose soft "
                                                                  "targets join the labels in the loss (same labels "
                                                                  "and vocabulary).")] = None,
    temperature: Annotated[float | None, typer.Option("--temperature", help="Distill: softening temperature of the "
                                                                            "KL term \\[default: 2].")] = None,
    alpha: Annotated[float | None, typer.Option("--alpha", help="Distill: weight of the KL term; 1 - alpha on the "
                                                                "labels \\[default: 0.5].")] = None,
    hidden_loss: Annotated[float | None, typer.Option("--hidden-loss", help="Distill: weight of the hidden-state "
                                                                            "MSE to the teacher \\[default: 0 (off)].")
                           ] = None,
    student_layers: Annotated[int | None, typer.Option("--student-layers", help="Train a model made of N of "
                                                                                "--model's layers, evenly spaced.")
                              ] = None,
    keep_zeros: Annotated[bool | None, typer.Option("--keep-zeros", help="Weight matrices' exact zeros stay zero "
                                                                         "(fine-tuning a pruned model).",
                                                    show_default=False)] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the head init, data order and dropout "
                                                            "\\[default: 0].")] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="Torch CPU threads \\[default: the cores available]."
                                                )] = None,
    license_id: Annotated[str | None, typer.Option("--license", help="License id for the model card.")] = None,
    private: Annotated[bool | None, typer.Option("--private", help="Create the output repo private.",
                                                 show_default=False)] = None,
    architecture: Annotated[str | None, typer.Option("--architecture", help="Pretrain from scratch: bert (masked-lm) "
                                                     "or gpt2 (causal-lm), with a tokenizer trained on the data.")
                            ] = None,
    from_config: Annotated[str | None, typer.Option("--from-config", help="Pretrain from scratch from this "
                                                                          "transformers config.json.")] = None,
    hidden_size: Annotated[int | None, typer.Option("--hidden-size", help="From scratch: hidden size "
                                                                          "\\[default: 128].")] = None,
    layers: Annotated[int | None, typer.Option("--layers", help="From scratch: layers \\[default: 2].")] = None,
    heads: Annotated[int | None, typer.Option("--heads", help="From scratch: attention heads \\[default: 2].")] = None,
    vocab_size: Annotated[int | None, typer.Option("--vocab-size", help="From scratch: size of the tokenizer "
                                                                        "trained on the data \\[default: 8000].")
                        ] = None,
    mlm_probability: Annotated[float | None, typer.Option("--mlm-probability", help="Masked LM: share of tokens "
                                                                                    "masked \\[default: 0.15].")
                             ] = None,
    nproc: Annotated[int | None, typer.Option("--nproc", help="Train with N data-parallel processes per node (torch "
                                                              "DDP via torchrun; gloo on CPU, nccl on GPU).")] = None,
    nnodes: Annotated[str | None, typer.Option("--nnodes", help="Multi-node: number of nodes (torchrun syntax, e.g. 2 "
                                                                "or 1:4); run the same command on every node.")] = None,
    node_rank: Annotated[int | None, typer.Option("--node-rank", help="Multi-node: this node's rank (optional with "
                                                                      "c10d rendezvous).")] = None,
    rdzv_endpoint: Annotated[str | None, typer.Option("--rdzv-endpoint", help="Multi-node: host:port of the "
                                                                              "rendezvous (e.g. node0:29400).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the newest checkpoint of the same "
                                                          "configuration (after a crash or kill).")] = False,
    endpoint: EndpointOption = None,
    token: TokenOption = None,
) -> int:
    """Fine-tune a model from the hub on a dataset from the hub and commit the result to --output.

    Example:
        fmhub train --task text-classification --model acme/minilm@v1 --data acme/bbc-news@v1 \\
            --output acme/bbc-minilm --epochs 3 --lr 5e-5 --eval-steps 50
        fmhub train -c train.yaml --resume
    """
    from fmhub.train import TrainConfig, train

    quiet_ml_libraries()
    flags = dict(task=task, model=model, data=data, output=output, text_column=text_column,
                 label_column=label_column, multi_label=multi_label, train_split=train_split, eval_split=eval_split,
                 learning_rate=learning_rate, schedule=schedule, warmup_ratio=warmup_ratio, epochs=epochs,
                 max_steps=max_steps, batch_size=batch_size, gradient_accumulation=gradient_accumulation,
                 max_length=max_length, weight_decay=weight_decay, max_grad_norm=max_grad_norm,
                 label_smoothing=label_smoothing, attention_dropout=_attention_dropout_option(attention_dropout),
                 class_weights=class_weights,
                 freeze_embeddings=_freeze_option(freeze),
                 freeze_layers=freeze_layers, eval_steps=eval_steps, save_steps=save_steps,
                 early_stopping_patience=early_stopping_patience, metric=metric, load_best_at_end=load_best_at_end,
                 ignore_mismatched_sizes=ignore_mismatched_sizes, seed=seed, threads=threads, license=license_id,
                 private=private, architecture=architecture, from_config=from_config, hidden_size=hidden_size,
                 layers=layers, heads=heads, vocab_size=vocab_size, mlm_probability=mlm_probability,
                 teacher=teacher, temperature=temperature, alpha=alpha, hidden_loss=hidden_loss,
                 student_layers=student_layers, keep_zeros=keep_zeros)
    if config_file is not None:
        config = TrainConfig.from_yaml(config_file, **flags)
    else:
        config = TrainConfig.from_dict({k: v for k, v in flags.items() if v is not None}, source="options")
    if nproc is not None or nnodes is not None:
        from fmhub.train._distributed import launch

        if endpoint or token:
            raise InvalidInputError("--nproc trains against the store FMHUB_DB_URL/FMHUB_BLOB_URL name",
                                    hint="set FMHUB_ENDPOINT/FMHUB_TOKEN in the environment instead of flags")
        return launch(config.to_dict(), nproc=nproc or 1, resume=resume, command=command_line(), nnodes=nnodes,
                      node_rank=node_rank, rdzv_endpoint=rdzv_endpoint)
    with opened_hub(endpoint, token) as hub, WorkProgress() as progress:
        outcome = train(config, hub, resume=resume, command=command_line(), on_step=progress.update,
                        on_metrics=progress.metrics)
    result = outcome.result
    shown = ", ".join(f"{k.removeprefix('eval_')} {v:.4f}" for k, v in result.metrics.items())
    if result.stopped_early:
        err_console.print(f"stopped early at step {result.steps} (best {config.metric} at step {result.best_step})")
    console.print(f"trained {result.steps} steps ({result.epochs:.2f} epochs, {result.samples_per_second:.1f} "
                  f"samples/s){'; ' + config.eval_split + ': ' + shown if shown else ''}")
    console.print(f"committed {outcome.commit} to {config.output}; run {outcome.run_id} "
                  f"(fmhub runs show {outcome.run_id})")
    console.print(json.dumps({"commit": outcome.commit, "run": outcome.run_id, **result.metrics}), style="dim",
                  highlight=False)
    return 0


def _attention_dropout_option(value: str | None) -> float | str | None:
    if value is None:
        return None
    if value.strip().lower() == "model":
        return "model"
    try:
        return float(value)
    except ValueError:
        raise InvalidInputError(f"--attention-dropout {value!r} is not a number",
                                hint="a probability in [0, 1), or 'model' for the model's own value") from None


def _freeze_option(value: str | None) -> bool | None:
    if value is None:
        return None
    if value != "embeddings":
        raise InvalidInputError(f"--freeze {value!r}: only embeddings can be frozen by name",
                                hint="--freeze embeddings, or --freeze-layers N for the first N layers")
    return True


def command_line() -> str:
    """The command as typed, for the run record (``fmhub train`` when called from Python)."""
    if Path(sys.argv[0]).name == "fmhub":
        return shlex.join(["fmhub", *sys.argv[1:]])
    return "fmhub train"
