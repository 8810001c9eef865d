"""Per-head attention entropy (nats): how spread out each head's attention is."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from phasewatch.measures.attention import probe_attentions
from phasewatch.measures.metrics import AttentionEntropy


def attention_entropy(
    model: Any,
    input_ids: Tensor,
    *,
    normalize: bool = False,
    attention_mask: Tensor | None = None,
) -> Tensor:
    """Mean attention entropy per head, in nats.

    For query position ``i`` with attention probabilities ``p_ij`` over its ``n_i = i + 1`` visible
    keys, ``H_i = -sum_j p_ij ln p_ij`` (0 for a head that looks at one token, ``ln n_i`` for a
    uniform head). The result averages ``H_i`` over the batch and over query positions
    ``1 .. T-1``: position 0 sees one key, so its entropy is always 0 and it is left out. With
    ``normalize=True`` each ``H_i`` is divided by ``ln n_i`` first (a fraction in ``[0, 1]``).
    Computed on the calling process alone (no DDP sync; see
    :class:`phasewatch.measures.metrics.AttentionEntropy`).

    Args:
        model: anything :func:`phasewatch.models.as_probe_model` accepts.
        input_ids: ``[B, T]`` (or ``[T]``) token ids.
        normalize: divide each query's entropy by its maximum ``ln n_i``.
        attention_mask: optional ``[B, T]`` 1/0 padding mask (Hugging Face models): padded queries
            are skipped and ``n_i`` counts unpadded keys only.

    Returns:
        ``Tensor[L, H]`` (float32, CPU), nats, or a fraction when ``normalize``.

    Reference: entropy of attention distributions as a measure of head specialisation, e.g.
    Clark et al. (2019), "What does BERT look at?", and Aoyama & Wilcox (2025).
    """
    probe, attentions = probe_attentions(model, input_ids, attention_mask=attention_mask)
    metric = AttentionEntropy(
        probe.num_layers, probe.num_heads, normalize=normalize, sync_on_compute=False
    )
    metric.update(attentions, attention_mask)
    return metric.compute().float().cpu()
