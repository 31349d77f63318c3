"""``POST /v1/explain``: attributions of the served model's prediction, with bounded cost.

The body follows the task endpoint's conventions (``{"inputs": "text" | [...], "parameters": {...}}``; image
models take base64 images as ``/v1/classify-image`` does); the parameters choose the method, the label, the
integrated-gradients steps and whether to measure faithfulness. What one request may cost is bounded by the
server: inputs per request (``--max-explain-inputs``), steps (``--max-explain-steps``; more answers 422), and
the input limits of the task endpoints (tokens: 422 unless ``truncate``; image pixels: 413).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fmhub.errors import EndpointNotServedError, InvalidInputError
from fmhub.explain import DEFAULT_STEPS, ExplainArgs, explain, for_task

__all__ = ["ExplainRequest", "ExplainParameters", "run_explain", "explainable"]


class ExplainParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["integrated-gradients", "occlusion", "attention-rollout"] | None = Field(
        None, description="Attribution method (default: integrated-gradients where the served format has "
                          "gradients, else occlusion).")
    label: str | None = Field(None, description="Label to explain (default: the predicted one).")
    steps: int = Field(DEFAULT_STEPS, ge=2, description="Integrated-gradients points to start from; the path's "
                                                        "worst intervals are halved until completeness holds, up to "
                                                        "the server's --max-explain-steps points.")
    faithfulness: bool = Field(False, description="Also measure comprehensiveness, sufficiency and deletion AUC.")
    truncate: bool = Field(False, description="Cut texts over the token limit instead of refusing them (422).")


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: str | list[str] = Field(description="One text (or base64 image), or a list of them.")
    parameters: ExplainParameters = ExplainParameters()


def explainable(loaded: Any) -> bool:
    return getattr(loaded.task, "explains", None) is not None


def run_explain(served: Any, inputs: list[Any], parameters: dict[str, Any], *, max_steps: int, max_inputs: int
                ) -> list[dict[str, Any]]:
    """Explain each input (runs in the model thread); an input error refuses the whole request before work."""
    loaded = served.loaded
    if not explainable(loaded):
        raise EndpointNotServedError(f"/v1/explain is not served for this {loaded.task.name} model",
                                     hint="explanations cover single-label text and image classifiers")
    if len(inputs) > max_inputs:
        raise InvalidInputError(f"{len(inputs)} inputs in one explain request; this server explains at most "
                                f"{max_inputs}", hint="split the request (or raise --max-explain-inputs)")
    steps = int(parameters.get("steps") or DEFAULT_STEPS)
    if steps > max_steps:
        raise InvalidInputError(f"steps {steps} is more than this server's {max_steps}",
                                hint=f"ask for {max_steps} steps or fewer (or raise --max-explain-steps)")
    explainer = for_task(loaded.task, loaded.repo)
    context = served.context
    values = [explainer.read_request(loaded, value, max_tokens=context.max_tokens, max_pixels=context.max_pixels,
                                     truncate=bool(parameters.get("truncate"))) for value in inputs]
    args = ExplainArgs(method=parameters.get("method"), label=parameters.get("label"), steps=steps,
                       max_steps=max_steps, max_length=min(context.max_tokens, served.positions or context.max_tokens),
                       faithfulness=bool(parameters.get("faithfulness")))
    out = []
    for explanation, measured in explain(loaded, values, args):
        body = explanation.to_dict()
        body.pop("source", None)
        if body["spans"] is None:
            body.pop("spans")
        if body["grid"] is None:
            body.pop("grid")
        out.append({**body, "faithfulness": measured})
    return out
