"""``pixels``: attributions of an image classifier's prediction to regions of its input image.

Units are square regions of the model's input (after its image processor): the model's own patches for a
vision transformer (so attention rollout lines up), else an 8 × 8 grid. Integrated gradients run on the pixel
values from zero pixel values — the dataset's mean colour after the
processor's normalization — and are summed per region; occlusion and the faithfulness measures set a region
to that baseline.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from fmhub.explain._base import (Explainer, MethodUnavailableError, Prepared, eager_attention, probabilities, rollout,
                                 straight_path)

__all__ = ["RegionAttributions", "as_image"]

_GRID = 8  # regions per side where the model has no patches of its own


def as_image(value: Any) -> Any:
    """An RGB Pillow image from a decoded image, bytes, or a stored ``{"bytes", "path"}`` value."""
    from PIL import Image

    if hasattr(value, "mode") and hasattr(value, "size"):
        return value.convert("RGB")
    data = value.get("bytes") if isinstance(value, dict) else value
    return Image.open(io.BytesIO(data)).convert("RGB")


class RegionAttributions(Explainer):
    name = "pixels"
    unit = "region"

    def prepare(self, loaded: Any, value: Any, *, max_length: int) -> Prepared:
        image = as_image(value)
        pixels = loaded.task.encode_batch(loaded.preprocessor, [image], 0)["pixel_values"].astype(np.float32)
        height, width = pixels.shape[-2:]
        patch = getattr(loaded.config, "patch_size", None)
        if not (isinstance(patch, int) and patch > 0 and height % patch == 0 and width % patch == 0):
            patch = max(1, -(-max(height, width) // _GRID))
        rows, columns = -(-height // patch), -(-width // patch)
        region = (np.arange(height)[:, None] // patch) * columns + (np.arange(width)[None, :] // patch)
        return Prepared({"pixel_values": pixels}, [f"r{r}c{c}" for r in range(rows) for c in range(columns)], image,
                        grid=(rows, columns), extra={"region": region, "patch": patch})

    def read_request(self, loaded: Any, value: Any, *, max_tokens: int, max_pixels: int, truncate: bool) -> Any:
        from fmhub.tasks import decode_base64, inspect_image

        data = decode_base64(value)
        inspect_image(data, max_pixels, what="an input image",
                      hint="send a smaller image (this server's --max-image-pixels)")
        return data

    def remove(self, loaded: Any, prepared: Prepared, removed: np.ndarray) -> dict[str, np.ndarray]:
        removed = np.atleast_2d(removed)
        pixels = np.repeat(prepared.inputs["pixel_values"], len(removed), axis=0)
        region = prepared.extra["region"]
        for i, row in enumerate(removed):
            pixels[i, :, row[region]] = 0.0  # (C, kept) → the baseline
        return {"pixel_values": pixels}

    def ablation(self, loaded: Any, prepared: Prepared) -> tuple[Any, Any, Any, Any]:
        import torch

        def forward(batch: Any) -> Any:
            return torch.from_numpy(probabilities(loaded, {"pixel_values": batch.numpy().astype(np.float32)}))

        mask = torch.from_numpy(prepared.extra["region"].astype(np.int64))[None, None]  # (1, 1, H, W)
        return torch.from_numpy(prepared.inputs["pixel_values"]), 0.0, mask, forward

    def path(self, loaded: Any, prepared: Prepared, target: int) -> Any:
        import torch

        model = loaded.model
        pixels = torch.from_numpy(prepared.inputs["pixel_values"])[0].float()  # (3, H, W)
        region = prepared.extra["region"].reshape(-1)
        units = len(prepared.units)
        dtype = next(model.parameters()).dtype

        def per_unit(grad: Any) -> np.ndarray:  # (k, 3, H, W) → (k, regions): summed over channels and region
            flat = grad.sum(1).reshape(len(grad), -1).numpy()
            return np.stack([np.bincount(region, weights=row, minlength=units) for row in flat])

        return straight_path(model, lambda x: model(pixel_values=x.to(dtype)).logits, torch.zeros_like(pixels),
                             pixels, target, batch=self.batch_size(prepared), per_unit=per_unit)

    def attention_rollout(self, loaded: Any, prepared: Prepared) -> np.ndarray:
        import torch

        model = loaded.model
        attentions: list[np.ndarray] = []
        try:
            with torch.no_grad(), eager_attention(model):
                out = model(pixel_values=torch.from_numpy(prepared.inputs["pixel_values"]), output_attentions=True)
            attentions = [a[0].float().numpy() for a in (getattr(out, "attentions", None) or ())]
        except TypeError:  # a convolutional network's forward takes no output_attentions
            pass
        regions = len(prepared.units)
        if not attentions or attentions[0].shape[-1] < regions + 1:
            raise MethodUnavailableError(f"attention-rollout needs a vision transformer; {loaded.repo or 'this model'}"
                                         f" ({loaded.config.model_type}) has no attention over image patches",
                                         hint="use --method integrated-gradients or occlusion")
        relevance = rollout(attentions)
        return relevance[0, -regions:].astype(np.float64)  # the class token's row, over the patches
