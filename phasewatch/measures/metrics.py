"""Attention measures as torchmetrics ``Metric``s: sums and counts that accumulate and sync.

Every state is a sum with ``dist_reduce_fx="sum"``, so ``update`` may be called on any number of
batches and ``compute`` (a collective under DDP: call it on every rank) returns the same value as
one pass over all of them. A metric held outside a LightningModule is not moved by Lightning:
``metric.to(device)`` it; ``update`` also accepts attention on another device than the states.

The plain functions (``attention_entropy``, ``all_head_scores``, ``syntactic_scores``) build these
metrics with ``sync_on_compute=False``: they measure on the calling process alone, so a callback
may call them on rank 0 only. Use the classes directly to accumulate across ranks.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from phasewatch.head_kinds import REPEATED_TOKENS, head_kind, repeated_token_kinds

#: Kinds read off the repeated-token probe when this module was imported (from
#: :data:`phasewatch.head_kinds.HEAD_KINDS`; the measures read the table itself).
HEAD_SCORE_KINDS = repeated_token_kinds()
#: Prediction rules of :func:`predict_dependency_heads`.
PREDICTION_RULES = ("directed", "undirected")


def _check_attentions(attentions: list[Tensor], num_layers: int, num_heads: int) -> None:
    if len(attentions) != num_layers:
        raise ValueError(
            f"`attentions` must hold one tensor per layer ({num_layers}), got {len(attentions)}"
        )
    for layer, tensor in enumerate(attentions):
        if tensor.dim() != 4 or tensor.shape[1] != num_heads or tensor.shape[2] != tensor.shape[3]:
            raise ValueError(
                f"`attentions[{layer}]` must have shape [B, {num_heads}, T, T], got "
                f"{list(tensor.shape)}"
            )


class AttentionEntropy(Metric):
    """Mean entropy (nats) of each head's attention distribution over query positions.

    For query ``i`` with probabilities ``p_ij`` over its ``n_i`` visible keys (``n_i = i + 1``
    without padding), ``H_i = -sum_j p_ij ln p_ij``; with ``normalize=True`` it is divided by its
    maximum ``ln n_i`` (1 = uniform, 0 = one key). The mean runs over every query position except
    those that see a single key (position 0, whose entropy is always 0, and padding).

    As input to ``update``:
        attentions: list of ``L`` tensors ``[B, H, T, T]`` (softmax probabilities).
        attention_mask: optional ``[B, T]`` 1/0 mask; padded queries are skipped and ``n_i`` counts
            unpadded keys only.

    As output of ``compute``: ``Tensor[L, H]`` in nats (or a fraction if normalized).
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False

    def __init__(self, num_layers: int, num_heads: int, *, normalize: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.normalize = normalize
        self.add_state("entropy_sum", torch.zeros(num_layers, num_heads), dist_reduce_fx="sum")
        self.add_state("query_count", torch.zeros(()), dist_reduce_fx="sum")
        self.num_layers, self.num_heads = num_layers, num_heads

    def update(self, attentions: list[Tensor], attention_mask: Tensor | None = None) -> None:
        _check_attentions(attentions, self.num_layers, self.num_heads)
        batch, _, tokens, _ = attentions[0].shape
        device = attentions[0].device
        if attention_mask is None:
            keys_seen = torch.arange(1, tokens + 1, device=device).expand(batch, tokens)
            counted = keys_seen >= 2
        else:
            present = attention_mask.reshape(batch, tokens).to(device).bool()
            keys_seen = present.long().cumsum(dim=-1)
            counted = present & (keys_seen >= 2)
        weight = counted.float()
        if self.normalize:
            weight = weight / keys_seen.clamp(min=2).float().log()
        sums = [
            (torch.special.entr(a.float()).sum(dim=-1) * weight[:, None, :]).sum(dim=(0, 2))
            for a in attentions
        ]
        self.entropy_sum += torch.stack(sums).to(self.entropy_sum)
        self.query_count += counted.sum().to(self.query_count)

    def compute(self) -> Tensor:
        return self.entropy_sum / self.query_count


class HeadScore(Metric):
    """Mean attention each head pays to one key per query on a repeated-random-token probe.

    The probe is ``prefix_length`` tokens (e.g. a BOS), then ``seq_len`` random tokens, then the
    same tokens again (see :func:`phasewatch.measures.head_scores.repeated_token_probe`). For every
    query ``s`` in the second repeat, ``prefix_length + seq_len <= s < prefix_length + 2 seq_len``,
    the score reads ``A[s, key(s)]`` and averages over batch and queries, with ``key(s)`` from the
    kind's row of :data:`phasewatch.head_kinds.HEAD_KINDS`:

    - ``"induction"``: ``key(s) = s - seq_len + 1``, the token after the earlier occurrence of the
      current token (Olsson et al., 2022);
    - ``"previous_token"``: ``key(s) = s - 1``;
    - ``"duplicate_token"``: ``key(s) = s - seq_len``, the earlier occurrence itself.

    An unknown kind, or one not read off this probe, raises ``ValueError``.

    As input to ``update``: ``attentions``, a list of ``L`` tensors ``[B, H, T, T]`` with
    ``T = prefix_length + 2 seq_len``. As output of ``compute``: ``Tensor[L, H]`` in ``[0, 1]``.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(
        self,
        kind: str,
        num_layers: int,
        num_heads: int,
        *,
        seq_len: int,
        prefix_length: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if head_kind(kind).probe != REPEATED_TOKENS:
            raise ValueError(
                f"`kind` {kind!r} is not read off the repeated-token probe; HeadScore takes "
                f"{', '.join(repeated_token_kinds())}"
            )
        if seq_len < 2 or prefix_length < 0:
            raise ValueError(
                f"`seq_len` must be >= 2 and `prefix_length` >= 0, got {seq_len} and "
                f"{prefix_length}"
            )
        self.kind, self.seq_len, self.prefix_length = kind, seq_len, prefix_length
        offset = self.key_offset()
        if offset > 0 or prefix_length + seq_len + offset < 0:
            raise ValueError(
                f"head kind {kind!r}: key(s) - s = {offset} points outside the probe's earlier "
                f"tokens for seq_len={seq_len}; its `offset` in HEAD_KINDS must give -(prefix + "
                "seq_len) <= key(s) - s <= 0"
            )
        self.num_layers, self.num_heads = num_layers, num_heads
        self.add_state("score_sum", torch.zeros(num_layers, num_heads), dist_reduce_fx="sum")
        self.add_state("query_count", torch.zeros(()), dist_reduce_fx="sum")

    def key_offset(self) -> int:
        """``key(s) - s`` for this kind, from its row of the head-kinds table (tokens)."""
        return head_kind(self.kind).key_offset(self.seq_len)

    def update(self, attentions: list[Tensor]) -> None:
        _check_attentions(attentions, self.num_layers, self.num_heads)
        batch, _, tokens, _ = attentions[0].shape
        expected = self.prefix_length + 2 * self.seq_len
        if tokens != expected:
            raise ValueError(
                f"attention covers {tokens} tokens, but the probe layout prefix_length="
                f"{self.prefix_length} + 2 × seq_len={self.seq_len} has {expected}"
            )
        # A[s, s + offset] for all s is the diagonal at `offset` (a view): entry i is query
        # i - offset; keep the queries of the second repeat.
        offset = self.key_offset()
        first = self.prefix_length + self.seq_len + offset
        stripes = [a.diagonal(offset=offset, dim1=-2, dim2=-1)[..., first:] for a in attentions]
        sums = [stripe.float().sum(dim=(0, 2)) for stripe in stripes]
        self.score_sum += torch.stack(sums).to(self.score_sum)
        self.query_count += batch * self.seq_len

    def compute(self) -> Tensor:
        return self.score_sum / self.query_count


def predict_dependency_heads(
    word_attention: Tensor, dependents: Tensor, heads: Tensor, rule: str = "directed"
) -> Tensor:
    """Each head's predicted syntactic head word for each arc, from word-level attention.

    ``word_attention`` is ``[L, H, W, W]`` (query word × key word, causal). Two rules:

    - ``"directed"`` (default): for an arc whose gold head lies left of the dependent ``d``, the
      prediction is the word ``k < d`` that ``d`` attends to most (outgoing attention); for a gold
      head right of ``d`` (which ``d`` cannot see), it is the word ``q > d`` that attends to ``d``
      most (incoming attention). The dependent itself is never a candidate. Ties go to the
      leftmost word.
    - ``"undirected"`` (Aoyama & Wilcox's published code, unscaled variant): one prediction per
      dependent, blind to the gold direction: the argmax over the outgoing row ``A[d, k], k <= d``
      followed by the incoming column ``A[q, d], q >= d``; ``d`` itself is a candidate (a miss).
      Ties go to the outgoing side, then the leftmost word. ``heads`` is not used.

    Returns:
        ``LongTensor[L, H, N]`` of predicted word indices for the ``N`` arcs.
    """
    if rule not in PREDICTION_RULES:
        raise ValueError(f"`rule` can be {', '.join(PREDICTION_RULES)}, got {rule!r}")
    words = word_attention.shape[-1]
    index = torch.arange(words, device=word_attention.device)
    dependents = dependents.to(word_attention.device)
    heads = heads.to(word_attention.device)
    outgoing = word_attention[:, :, dependents, :]  # [L, H, N, W]: rows of the dependents
    incoming = word_attention[:, :, :, dependents].transpose(-1, -2)  # [L, H, N, W]: columns
    if rule == "undirected":
        outgoing = outgoing.masked_fill(index[None, :] > dependents[:, None], float("-inf"))
        incoming = incoming.masked_fill(index[None, :] < dependents[:, None], float("-inf"))
        return torch.cat([outgoing, incoming], dim=-1).argmax(dim=-1) % words
    outgoing = outgoing.masked_fill(index[None, :] >= dependents[:, None], float("-inf"))
    incoming = incoming.masked_fill(index[None, :] <= dependents[:, None], float("-inf"))
    head_is_left = heads < dependents
    return torch.where(head_is_left, outgoing.argmax(dim=-1), incoming.argmax(dim=-1))


class SyntacticAttentionScore(Metric):
    """Per-head and per-relation accuracy of attention at finding gold dependency heads, and SAS.

    With ``hits[r, l, h]`` the arcs of relation ``r`` whose gold head word head ``(l, h)`` picks
    out (prediction: :func:`predict_dependency_heads` with ``rule``) and ``arcs[r]`` the arcs of
    ``r``:

    - per head: ``hits[:, l, h].sum() / arcs.sum()``, the head's accuracy over all arcs
      (its maximum over heads is ``heads/syntactic_max``);
    - per relation: ``hits[r, l, h] / arcs[r]`` (Clark et al., 2019);
    - ``SAS = sum_r max_{l,h} hits[r, l, h] / sum_r arcs[r]``: for each relation the head best at
      it, hits pooled over all arcs (Chen et al., 2024; Aoyama & Wilcox, 2025) — ``heads/sas``.
      SAS ≥ the best single head's accuracy, equal when one head is best at every relation.

    As input to ``update``: ``word_attention [L, H, W, W]`` for one text window, and the window's
    arcs as word indices ``dependents [N]`` and ``heads [N]`` plus ``relations [N]`` (indices into
    ``num_relations``). As output of ``compute``: a dict with ``"per_head"`` ``Tensor[L, H]``,
    ``"per_relation"`` ``Tensor[R, L, H]`` (accuracy per relation), ``"arcs_per_relation"``
    ``Tensor[R]`` and ``"sas"`` (a 0-d tensor), all fractions in ``[0, 1]`` (counts for arcs).

    A head whose word attention held a NaN or ±inf in any window scores NaN (per head and per
    relation), and so does SAS: an argmax over NaN would otherwise pick a fixed word and give
    every such head the same plausible accuracy.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(
        self,
        num_layers: int,
        num_heads: int,
        num_relations: int = 1,
        *,
        rule: str = "directed",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if rule not in PREDICTION_RULES:
            raise ValueError(f"`rule` can be {', '.join(PREDICTION_RULES)}, got {rule!r}")
        self.num_layers, self.num_heads, self.rule = num_layers, num_heads, rule
        shape = (num_relations, num_layers, num_heads)
        self.add_state("relation_hits", torch.zeros(shape), dist_reduce_fx="sum")
        self.add_state("relation_arcs", torch.zeros(num_relations), dist_reduce_fx="sum")
        self.add_state(
            "nonfinite_windows", torch.zeros(num_layers, num_heads), dist_reduce_fx="sum"
        )

    def update(
        self,
        word_attention: Tensor,
        dependents: Tensor,
        heads: Tensor,
        relations: Tensor | None = None,
    ) -> None:
        expected = (self.num_layers, self.num_heads)
        if word_attention.dim() != 4 or tuple(word_attention.shape[:2]) != expected:
            raise ValueError(
                f"`word_attention` must have shape [{self.num_layers}, {self.num_heads}, W, W], "
                f"got {list(word_attention.shape)}"
            )
        if relations is None:
            relations = torch.zeros_like(dependents)
        if len(dependents) == 0:
            return
        finite = torch.isfinite(word_attention).flatten(2).all(dim=-1)  # [L, H]
        self.nonfinite_windows += (~finite).to(self.nonfinite_windows)
        predicted = predict_dependency_heads(word_attention, dependents, heads, self.rule)
        hits = (predicted == heads.to(predicted.device)).float().permute(2, 0, 1)  # [N, L, H]
        relations = relations.to(self.relation_hits.device)
        self.relation_hits.index_add_(0, relations, hits.to(self.relation_hits))
        self.relation_arcs.index_add_(
            0, relations, torch.ones_like(relations).to(self.relation_arcs)
        )

    def compute(self) -> dict[str, Tensor]:
        arcs = self.relation_arcs.sum()
        hits = self.relation_hits.masked_fill(self.nonfinite_windows[None] > 0, float("nan"))
        return {
            "per_head": hits.sum(dim=0) / arcs,
            "per_relation": hits / self.relation_arcs[:, None, None],
            "arcs_per_relation": self.relation_arcs.clone(),
            "sas": hits.flatten(1).amax(dim=1).sum() / arcs,  # amax propagates NaN
        }
