"""Hand-built attention-only transformers with known attention, to check measures against.

Each implements :class:`~phasewatch.models.AttentionModel`. Weights are explicit matrices written
in the residual stream's basis (no training), following the circuits picture of Elhage et al.
(2021) and Olsson et al. (2022):

- :func:`uniform_attention_model`: queries and keys are zero, so query ``i`` attends ``1/(i+1)``
  to every position ``0..i`` (entropy ``ln(i+1)`` nats).
- :func:`induction_circuit_model`: layer 0 head 0 is a previous-token head, layer 1 head 0 an
  induction head; the other head of each layer is uniform and writes nothing.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class HandBuiltTransformer(nn.Module):
    """Attention-only causal transformer with explicit per-head weights.

    The residual stream ``x`` (width ``d``) starts as
    ``token_embedding[id] + position_embedding[i]``; each layer adds
    ``sum_h softmax(causal(x Q_h (x K_h)^T)) x V_h`` (no scaling, no layer norm, no MLP);
    ``logits = x @ unembedding``.

    Args:
        token_embedding: ``[V, d]``.
        position_embedding: ``[max_length, d]``.
        query, key: ``[L, H, d, k]`` projections.
        value: ``[L, H, d, d]`` (value and output projection in one).
        unembedding: ``[d, V]``.
    """

    def __init__(
        self,
        token_embedding: Tensor,
        position_embedding: Tensor,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        unembedding: Tensor,
    ) -> None:
        super().__init__()
        self.register_buffer("token_embedding", token_embedding.float())
        self.register_buffer("position_embedding", position_embedding.float())
        self.register_buffer("query", query.float())
        self.register_buffer("key", key.float())
        self.register_buffer("value", value.float())
        self.register_buffer("unembedding", unembedding.float())
        self.num_layers, self.num_heads = query.shape[:2]
        self.vocab_size = token_embedding.shape[0]
        self.max_length = position_embedding.shape[0]

    def forward_with_attentions(self, input_ids: Tensor) -> tuple[Tensor, list[Tensor]]:
        tokens = input_ids.shape[1]
        x = self.token_embedding[input_ids] + self.position_embedding[:tokens]
        future = torch.ones(tokens, tokens, dtype=torch.bool, device=x.device).triu(1)
        attentions = []
        for layer in range(self.num_layers):
            q = torch.einsum("btd,hdk->bhtk", x, self.query[layer])
            k = torch.einsum("btd,hdk->bhtk", x, self.key[layer])
            scores = (q @ k.transpose(-1, -2)).masked_fill(future, float("-inf"))
            pattern = scores.softmax(dim=-1)
            values = torch.einsum("btd,hde->bhte", x, self.value[layer])
            x = x + (pattern @ values).sum(dim=1)
            attentions.append(pattern)
        return x @ self.unembedding, attentions

    def forward(self, input_ids: Tensor) -> Tensor:
        return self.forward_with_attentions(input_ids)[0]


def uniform_attention_model(
    num_layers: int = 2, num_heads: int = 2, vocab_size: int = 50, max_length: int = 128
) -> HandBuiltTransformer:
    """Every head attends uniformly: ``p_ij = 1/(i+1)`` for ``j <= i``. Logits are zero."""
    width = 1
    return HandBuiltTransformer(
        token_embedding=torch.zeros(vocab_size, width),
        position_embedding=torch.zeros(max_length, width),
        query=torch.zeros(num_layers, num_heads, width, width),
        key=torch.zeros(num_layers, num_heads, width, width),
        value=torch.zeros(num_layers, num_heads, width, width),
        unembedding=torch.zeros(width, vocab_size),
    )


def induction_circuit_model(
    vocab_size: int = 50, max_length: int = 128, sharpness: float = 20.0
) -> HandBuiltTransformer:
    """Two layers × two heads: a previous-token head (0, 0) feeding an induction head (1, 0).

    Residual stream slots: token one-hot ``[0, V)``, position one-hot ``[V, V+P)``, previous token
    ``[V+P, 2V+P)``, predicted token ``[2V+P, 3V+P)``.

    - Head (0, 0): query at position ``i`` is ``sharpness`` × one-hot(``i-1``), key at ``j`` is
      one-hot(``j``): it attends to ``i-1`` and copies that token into the previous-token slot.
    - Head (1, 0): query is ``sharpness`` × one-hot(current token), key is the previous-token slot:
      it attends to positions whose previous token equals the current token (the token after the
      earlier occurrence) and copies their token into the predicted slot, read by the unembedding.
      Position 0 (whose previous-token slot holds its own token) gets a key offset that never
      matches.
    - Heads (0, 1) and (1, 1): zero query, key and value: uniform attention that writes nothing.

    ``sharpness`` (logit units) sets how peaked the two circuit heads are: the attended position
    gets ``e^s / (e^s + n)`` of the attention with ``n`` competitors.
    """
    vocab, positions = vocab_size, max_length
    token, position = slice(0, vocab), slice(vocab, vocab + positions)
    previous = slice(vocab + positions, 2 * vocab + positions)
    predicted = slice(2 * vocab + positions, 3 * vocab + positions)
    width = 3 * vocab + positions

    token_embedding = torch.zeros(vocab, width)
    token_embedding[:, token] = torch.eye(vocab)
    position_embedding = torch.zeros(positions, width)
    position_embedding[:, position] = torch.eye(positions)

    key_width = max(vocab, positions)
    query = torch.zeros(2, 2, width, key_width)
    key = torch.zeros(2, 2, width, key_width)
    value = torch.zeros(2, 2, width, width)
    # Previous-token head: position i queries position i-1.
    query[0, 0, position, :positions] = sharpness * torch.eye(positions).roll(-1, dims=1)
    query[0, 0, vocab, :positions] = 0.0  # position 0 has no previous token
    key[0, 0, position, :positions] = torch.eye(positions)
    value[0, 0, token, previous] = torch.eye(vocab)
    # Induction head: the current token queries the previous-token slot.
    query[1, 0, token, :vocab] = sharpness * torch.eye(vocab)
    key[1, 0, previous, :vocab] = torch.eye(vocab)
    key[1, 0, vocab, :vocab] = -1.0  # position 0 copied its own token: never a match
    value[1, 0, token, predicted] = torch.eye(vocab)

    unembedding = torch.zeros(width, vocab)
    unembedding[predicted, :] = sharpness * torch.eye(vocab)
    return HandBuiltTransformer(token_embedding, position_embedding, query, key, value, unembedding)
