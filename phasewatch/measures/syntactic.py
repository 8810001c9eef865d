"""Syntactic attention heads: how often a head's attention points from a word to its syntactic head.

Per head, the accuracy is the fraction of gold dependency arcs (Universal Dependencies parses of
the corpus, ``root`` excluded) for which the head's word-level attention picks out the gold head
word; per relation, the best head's accuracy is the relation's UAS (Clark et al., 2019). The
syntactic attention score (SAS; Chen et al., 2024; Aoyama & Wilcox, 2025) takes, for each
relation, the head best at it and pools their hits over all arcs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from phasewatch.measures._lru import lru_get
from phasewatch.measures.attention import summarize
from phasewatch.measures.metrics import PREDICTION_RULES, SyntacticAttentionScore
from phasewatch.measures.token_cache import tokenize_stories, tokenizer_fingerprint
from phasewatch.measures.tokenization import as_text_tokenizer
from phasewatch.models import ProbeModel, as_probe_model

_AUTO = "auto"
#: Most stories' window plans kept (least recently used dropped first).
MAX_PLANS = 64
_plans: OrderedDict[tuple, tuple[list[_Window], int]] = OrderedDict()


@dataclass(frozen=True)
class SyntacticResult:
    """Syntactic scores of every head, and the model's SAS.

    Attributes:
        per_head: ``Tensor[L, H]`` in ``[0, 1]``: fraction of all scored arcs whose gold head
            word the head picks out (its maximum is ``heads/syntactic_max``); NaN for a head
            whose attention was not finite (NaN weights), and then ``sas`` is NaN too.
        per_relation: relation → ``((layer, head), UAS)`` of the head best at that relation.
        n_arcs: arcs scored (``root`` and other excluded relations left out).
        n_skipped: arcs not scored because dependent and head fell in different windows, or a word
            got no token.
        arcs_per_relation: relation → number of scored arcs.
        sas: syntactic attention score in ``[0, 1]`` (``heads/sas``):
            ``sum_r max_{l,h} hits[r, l, h] / sum_r arcs[r]``, the best head per relation with
            its hits pooled; ``>= per_head.max()``.
        rule: the prediction rule (``"directed"`` or ``"undirected"``).
    """

    per_head: Tensor
    per_relation: dict[str, tuple[tuple[int, int], float]]
    n_arcs: int
    n_skipped: int = 0
    arcs_per_relation: dict[str, int] = field(default_factory=dict)
    sas: float = float("nan")
    rule: str = "directed"

    def __repr__(self) -> str:
        best_head = summarize(self.per_head)  # NaN at the first non-finite head, if any
        layer, head, best = best_head.layer, best_head.head, best_head.max
        return (
            f"SyntacticResult(n_arcs={self.n_arcs}, n_skipped={self.n_skipped}, "
            f"SAS={self.sas:.3f}, best head={best:.3f} at L{layer}H{head}, "
            f"relations={len(self.per_relation)}, rule={self.rule!r})"
        )


@dataclass(frozen=True)
class _Window:
    """A slice of one story: token ids (prefix included), token → word map and arcs, all local."""

    input_ids: list[int]
    token_word: list[int]  # -1 for prefix tokens
    n_words: int
    dependents: list[int]
    heads: list[int]
    relations: list[int]


def syntactic_scores(
    model: Any,
    tokenizer: Any,
    corpus: Any,
    dependencies: pd.DataFrame | None = None,
    *,
    max_stories: int | None = None,
    max_tokens: int | None = None,
    batch_size: int = 4,
    bos_token_id: int | str | None = _AUTO,
    exclude_relations: Iterable[str] = ("root",),
    rule: str = "directed",
) -> SyntacticResult:
    """Syntactic attention score (SAS), per-head accuracy and per-relation best-head UAS.

    Word-level attention: from query word ``q`` to key word ``k`` it is the attention summed over
    ``k``'s subword tokens and averaged over ``q``'s subword tokens. With causal attention a
    dependent ``d`` can only look left, so for an arc ``d → h`` (``rule="directed"``):

    - ``h < d``: predicted head = ``argmax_{k < d} A[d, k]`` (outgoing attention);
    - ``h > d``: predicted head = ``argmax_{q > d} A[q, d]`` (incoming attention: the word that
      attends most to the dependent).

    The dependent itself is never a candidate (multi-token words attend to themselves a lot).
    ``rule="undirected"`` is the published code of Aoyama & Wilcox (2025): one argmax over the
    outgoing row and the incoming column together, self included, blind to the gold direction
    (:func:`phasewatch.measures.metrics.predict_dependency_heads`). With ``hits[r, l, h]`` the arcs
    of relation ``r`` head ``(l, h)`` gets right and ``arcs[r]`` the arcs of ``r``:

    - per head: ``hits[:, l, h].sum() / sum_r arcs[r]`` (max over heads: ``heads/syntactic_max``);
    - per relation: the best head and its accuracy ``hits[r, l, h] / arcs[r]`` (UAS);
    - ``SAS = sum_r max_{l,h} hits[r, l, h] / sum_r arcs[r]`` (``heads/sas``).

    Computed on the calling process alone (no DDP sync).

    Tokenization: each story's text is its words joined by single spaces, tokens are assigned to
    words as for surprisal (:mod:`phasewatch.measures.tokenization`: the space before a word
    belongs to it; split bytes of a character join their word). Windows: each
    story is cut into windows of at most ``max_tokens`` tokens (BOS included) at boundaries no arc
    crosses (sentences), packed greedily; a sentence longer than a window is split at word
    boundaries and its crossing arcs are skipped (``n_skipped``).

    Args:
        model: anything :func:`phasewatch.models.as_probe_model` accepts (causal attention).
        tokenizer: a transformers fast tokenizer, a ``tokenizers.Tokenizer``, or any tokenizer
            :func:`phasewatch.measures.tokenization.encode_with_offsets` accepts.
        corpus: a ``ReadingTimeCorpus`` (or a frame with ``story``, ``position``, ``word``).
        dependencies: frame with ``story``, ``position``, ``head_position`` (0 = root),
            ``relation``; default: ``corpus.dependencies`` (a corpus's own arcs; never another
            corpus's: without arcs this raises).
        max_stories: use only the first stories of the corpus.
        max_tokens: window length in tokens (default: the model's max_length).
        batch_size: windows per forward pass. Memory: ``L·H·T²·4`` bytes of attention per window.
        bos_token_id: token put before every window; ``"auto"`` uses the rule of word surprisal
            (:class:`~phasewatch.measures.tokenization.TextTokenizer`: the tokenizer's
            ``bos_token_id``, else its ``eos_token_id``, else nothing); ``None`` puts nothing.
        exclude_relations: relations not scored.
        rule: ``"directed"`` (default) or ``"undirected"`` (the paper's code), see above.

    Returns:
        :class:`SyntacticResult`.

    References: Clark, Khandelwal, Levy & Manning (2019), "What does BERT look at?"; Chen,
    Schwartz-Ziv, Cho, Leavitt & Saphra (2024), "Sudden drops in the loss: syntax acquisition,
    phase transitions, and simplicity bias in MLMs"; Aoyama & Wilcox (2025).
    """
    probe = as_probe_model(model)
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1, got {batch_size}")
    if rule not in PREDICTION_RULES:
        raise ValueError(f"`rule` can be {', '.join(PREDICTION_RULES)}, got {rule!r}")
    frame = getattr(corpus, "frame", corpus)
    if dependencies is None:
        dependencies = getattr(corpus, "dependencies", None)
    if dependencies is None:
        raise ValueError(
            f"no dependency arcs to score against: the corpus "
            f"{getattr(corpus, 'name', '(a frame)')!r} carries none; pass `dependencies=` "
            "(story, position, head_position, relation) or a ReadingTimeCorpus that has them "
            "(load('naturalstories'), load_tsv(head=..., relation=...))"
        )
    stories = list(dict.fromkeys(frame["story"].tolist()))
    if max_stories is not None:
        stories = stories[:max_stories]
    arcs = _scored_arcs(dependencies, stories, set(exclude_relations))
    if arcs.empty:
        raise ValueError(
            f"`dependencies` has no arc to score for the corpus stories {stories[:5]}: check that "
            "its `story` ids match the corpus's and that `exclude_relations` leaves some"
        )
    relations = sorted(arcs["relation"].unique().tolist())
    relation_index = {r: i for i, r in enumerate(relations)}
    bos = _bos_token_id(tokenizer, bos_token_id)
    prefix = [] if bos is None else [bos]
    budget = _window_budget(probe, max_tokens, len(prefix))

    windows: list[_Window] = []
    n_skipped = 0
    fingerprint = tokenizer_fingerprint(tokenizer)
    story_frames = dict(tuple(frame[frame["story"].isin(stories)].groupby("story", sort=False)))
    story_arcs = dict(tuple(arcs.groupby("story", sort=False)))
    for story in stories:
        rows = story_frames[story].sort_values("position")
        empty = arcs.iloc[:0]
        story_windows, skipped = _planned_story_windows(
            fingerprint,
            rows,
            story_arcs.get(story, empty),
            tokenizer,
            prefix,
            budget,
            relation_index,
        )
        windows.extend(w for w in story_windows if w.dependents)
        n_skipped += skipped

    # Computed locally (no sync on compute): callers may run it on one rank only.
    metric = SyntacticAttentionScore(
        probe.num_layers,
        probe.num_heads,
        max(len(relations), 1),
        rule=rule,
        sync_on_compute=False,
    )
    with probe.probing():
        for start in range(0, len(windows), batch_size):
            _score_batch(probe, windows[start : start + batch_size], metric)
    if float(metric.relation_arcs.sum()) == 0:
        raise ValueError(
            f"none of the {len(arcs)} arcs could be scored ({n_skipped} cross a window or a "
            "word without tokens): raise `max_tokens`"
        )
    values = metric.compute()
    # torchmetrics squeezes one-element outputs: one relation's counts come back 0-dim
    values["arcs_per_relation"] = values["arcs_per_relation"].reshape(len(relations))
    values["per_relation"] = values["per_relation"].reshape(
        len(relations), probe.num_layers, probe.num_heads
    )
    per_relation, counts = {}, {}
    for i, relation in enumerate(relations):
        n = int(values["arcs_per_relation"][i])
        if n == 0:
            continue
        scores = values["per_relation"][i]
        layer, head = divmod(int(scores.flatten().argmax()), probe.num_heads)
        per_relation[relation] = ((layer, head), float(scores[layer, head]))
        counts[relation] = n
    return SyntacticResult(
        per_head=values["per_head"].float().cpu(),
        per_relation=per_relation,
        n_arcs=int(values["arcs_per_relation"].sum()),
        n_skipped=n_skipped,
        arcs_per_relation=counts,
        sas=float(values["sas"]),
        rule=rule,
    )


def _scored_arcs(dependencies: pd.DataFrame, stories: Sequence, excluded: set) -> pd.DataFrame:
    needed = ("story", "position", "head_position", "relation")
    missing = [c for c in needed if c not in dependencies.columns]
    if missing:
        raise ValueError(
            f"`dependencies` lacks the columns {missing}; expected {list(needed)} "
            "(see phasewatch.corpora.naturalstories.load_dependencies)"
        )
    keep = (
        dependencies["story"].isin(stories)
        & (dependencies["head_position"] != 0)
        & ~dependencies["relation"].isin(excluded)
    )
    return dependencies.loc[keep, list(needed)]


def _bos_token_id(tokenizer: Any, bos_token_id: int | str | None) -> int | None:
    if bos_token_id == _AUTO:  # the rule word surprisal uses: BOS, else EOS, else none
        return as_text_tokenizer(tokenizer).bos_token_id
    if bos_token_id is not None and not isinstance(bos_token_id, int):
        raise ValueError(f"`bos_token_id` must be an int, None or 'auto', got {bos_token_id!r}")
    return bos_token_id


def _window_budget(probe: ProbeModel, max_tokens: int | None, prefix: int) -> int:
    length = max_tokens if max_tokens is not None else probe.max_length
    if length is None:
        raise ValueError(
            f"{type(probe.module).__name__} does not report a max_length; pass `max_tokens=`"
        )
    if probe.max_length is not None and length > probe.max_length:
        raise ValueError(f"`max_tokens`={length} exceeds the model's max_length={probe.max_length}")
    if length - prefix < 2:
        raise ValueError(f"`max_tokens` must leave room for two words, got {length}")
    return length - prefix


def _segments(n_words: int, dependents: list[int], heads: list[int]) -> list[tuple[int, int]]:
    """Shortest word ranges ``[start, end)`` that no arc crosses (sentences)."""
    reach = list(range(n_words))
    for d, h in zip(dependents, heads, strict=True):
        low, high = min(d, h), max(d, h)
        reach[low] = max(reach[low], high)
    segments, start, furthest = [], 0, -1
    for k in range(n_words):
        furthest = max(furthest, reach[k])
        if furthest == k:
            segments.append((start, k + 1))
            start = k + 1
    return segments


def _planned_story_windows(
    fingerprint: str | None,
    rows: pd.DataFrame,
    arcs: pd.DataFrame,
    tokenizer: Any,
    prefix: list[int],
    budget: int,
    relation_index: dict[str, int],
) -> tuple[list[_Window], int]:
    """:func:`_story_windows`, kept for the next measurement: keyed by the tokenizer's content
    (its fingerprint), the story's words and positions, its arcs, the prefix, the token budget and
    the relations, so any change in them plans again. A tokenizer without a fingerprint plans
    every time."""
    if fingerprint is None:
        return _story_windows(rows, arcs, tokenizer, prefix, budget, relation_index)
    key = (
        fingerprint,
        tuple(prefix),
        budget,
        tuple(relation_index.items()),
        tuple(rows["word"].astype(str).tolist()),
        tuple(rows["position"].tolist()),
        tuple(arcs["position"].tolist()),
        tuple(arcs["head_position"].tolist()),
        tuple(arcs["relation"].tolist()),
    )
    return lru_get(
        _plans,
        key,
        lambda: _story_windows(rows, arcs, tokenizer, prefix, budget, relation_index),
        MAX_PLANS,
    )


def clear_plan_cache() -> None:
    """Forget every kept window plan."""
    _plans.clear()


def _story_windows(
    rows: pd.DataFrame,
    arcs: pd.DataFrame,
    tokenizer: Any,
    prefix: list[int],
    budget: int,
    relation_index: dict[str, int],
) -> tuple[list[_Window], int]:
    words = [str(w) for w in rows["word"].tolist()]
    index_of = {int(p): i for i, p in enumerate(rows["position"].tolist())}
    tokenized = tokenize_stories(tokenizer, [words])[0]  # shared with word surprisal's cache
    ids, token_word = tokenized.ids.tolist(), tokenized.word_index.tolist()
    first_token, last_token = {}, {}
    for t, w in enumerate(token_word):
        first_token.setdefault(w, t)
        last_token[w] = t

    dependents, heads, relations, skipped = [], [], [], 0
    for d, h, r in zip(arcs["position"], arcs["head_position"], arcs["relation"], strict=True):
        d, h = index_of.get(int(d)), index_of.get(int(h))
        if d is None or h is None or d not in first_token or h not in first_token:
            skipped += 1
            continue
        dependents.append(d)
        heads.append(h)
        relations.append(relation_index[r])

    ranges = _pack(_segments(len(words), dependents, heads), first_token, last_token, budget)
    windows = []
    for start, end in ranges:
        inside = [
            i
            for i, (d, h) in enumerate(zip(dependents, heads, strict=True))
            if start <= d < end and start <= h < end
        ]
        t0 = min(first_token[w] for w in range(start, end) if w in first_token)
        t1 = max(last_token[w] for w in range(start, end) if w in last_token) + 1
        windows.append(
            _Window(
                input_ids=prefix + ids[t0:t1],
                token_word=[-1] * len(prefix) + [w - start for w in token_word[t0:t1]],
                n_words=end - start,
                dependents=[dependents[i] - start for i in inside],
                heads=[heads[i] - start for i in inside],
                relations=[relations[i] for i in inside],
            )
        )
    scored = sum(len(w.dependents) for w in windows)
    return windows, skipped + len(dependents) - scored


def _pack(
    segments: list[tuple[int, int]], first_token: dict, last_token: dict, budget: int
) -> list[tuple[int, int]]:
    """Greedy windows of whole segments with at most ``budget`` tokens; long segments are split."""

    def n_tokens(start: int, end: int) -> int:
        present = [w for w in range(start, end) if w in first_token]
        return 0 if not present else last_token[present[-1]] - first_token[present[0]] + 1

    pieces = []
    for start, end in segments:
        if n_tokens(start, end) <= budget:
            pieces.append((start, end))
            continue
        piece_start = start
        for w in range(start, end):
            if w > piece_start and n_tokens(piece_start, w + 1) > budget:
                pieces.append((piece_start, w))
                piece_start = w
        pieces.append((piece_start, end))
    windows: list[tuple[int, int]] = []
    for start, end in pieces:
        if windows and n_tokens(windows[-1][0], end) <= budget:
            windows[-1] = (windows[-1][0], end)
        else:
            windows.append((start, end))
    return [(s, e) for s, e in windows if n_tokens(s, e) > 0]


def word_attention(attention: Tensor, token_word: Tensor, n_words: int) -> Tensor:
    """Word-level attention ``[L, H, W, W]`` from token-level ``[L, H, T, T]``.

    Key words sum their tokens' attention, query words average over their tokens; tokens with
    ``token_word == -1`` (BOS) are left out.
    """
    token_word = token_word.to(attention.device)
    words = torch.arange(n_words, device=attention.device)
    membership = (token_word[None, :] == words[:, None]).to(attention.dtype)  # [W, T]
    query_mean = membership / membership.sum(dim=1, keepdim=True).clamp(min=1)
    layers = [query_mean @ layer @ membership.T for layer in attention]  # [H, W, W] each
    return torch.stack(layers)


def _score_batch(probe: ProbeModel, batch: list[_Window], metric: SyntacticAttentionScore) -> None:
    # Right padding: with causal attention no real token sees the padding, so no mask is needed.
    longest = max(len(w.input_ids) for w in batch)
    input_ids = torch.zeros(len(batch), longest, dtype=torch.long)
    for i, window in enumerate(batch):
        input_ids[i, : len(window.input_ids)] = torch.tensor(window.input_ids)
    _, attentions = probe.forward(input_ids, attention=True, logits=False)
    for i, window in enumerate(batch):
        if not window.dependents:
            continue
        tokens = len(window.input_ids)
        attention = torch.stack([a[i, :, :tokens, :tokens].float() for a in attentions])
        words = word_attention(attention, torch.tensor(window.token_word), window.n_words)
        metric.update(
            words,
            torch.tensor(window.dependents),
            torch.tensor(window.heads),
            torch.tensor(window.relations),
        )
