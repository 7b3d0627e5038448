"""The identity of a model's weights, whatever file (or no file) they came from."""

from __future__ import annotations

import hashlib

from torch import nn


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of the model's tensors: names, shapes, dtypes and values, a shared trunk counted once.

    Importance results and projects store it to tell whether they belong to the weights at hand, so its
    value must never change: floating tensors are hashed as float32, and a tensor whose storage was
    already hashed (the class branch's view of the merged trunk, later in name order) is skipped."""
    h = hashlib.sha256()
    seen: set[tuple] = set()
    for name, t in sorted(model.state_dict().items()):
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()))
        if t.numel() and key in seen:
            continue
        seen.add(key)
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}\n".encode())
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes() if t.is_floating_point()
                 else t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
