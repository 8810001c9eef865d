"""Dependency arcs on tokens: word arcs mapped to token heads, and training windows that carry them.

A training batch carries its arcs as ``token_heads`` ``LongTensor[B, T]``: for token ``t``, the
index of its syntactic head's token in the same window, or ``-1`` (no arc: BOS, padding, root,
excluded relations, or a head outside the window). :class:`ArcWindows` builds such windows from a
corpus with word-level dependencies, aligning tokens to words as the syntactic score does
(:func:`phasewatch.measures.syntactic.syntactic_scores`: same tokenization, same BOS, same windows).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import Dataset

from phasewatch.measures.syntactic import (
    _AUTO,
    _bos_token_id,
    _scored_arcs,
    _story_windows,
)

NO_HEAD = -1
"""``token_heads`` value of a token without an arc."""


def word_arcs_to_token_heads(
    token_word: Sequence[int] | np.ndarray | Tensor,
    dependents: Sequence[int],
    heads: Sequence[int],
) -> Tensor:
    """Token heads ``LongTensor[T]`` from word arcs ``dependents[i] → heads[i]`` (word indices).

    Every token of a dependent word gets the first token of its head word; tokens of words that
    are no dependent (and tokens with ``token_word == -1``, e.g. BOS) get ``-1``. An arc whose
    dependent or head word has no token is dropped.

    Args:
        token_word: ``[T]`` word index of each token (``-1`` for tokens outside every word).
        dependents, heads: word indices of the arcs (one head per dependent).
    """
    token_word = torch.as_tensor(np.asarray(token_word), dtype=torch.long)
    if len(dependents) != len(heads):
        raise ValueError(
            f"`dependents` and `heads` must have the same length, got {len(dependents)} and "
            f"{len(heads)}"
        )
    first_token: dict[int, int] = {}
    for t, w in enumerate(token_word.tolist()):
        if w >= 0:
            first_token.setdefault(w, t)
    token_heads = torch.full_like(token_word, NO_HEAD)
    for d, h in zip(dependents, heads, strict=True):
        d, h = int(d), int(h)
        if d == h:
            raise ValueError(f"word {d} is its own head; a dependency arc joins two words")
        if h in first_token:
            token_heads[token_word == d] = first_token[h]
    return token_heads


def dependencies_from_conllu(
    conllu: str | Path, story: Any, *, words: Sequence[str] | None = None
) -> pd.DataFrame:
    """A story's dependency frame from a CoNLL-U parse with one token per corpus word.

    Sentences follow each other in reading order; word ``i`` (1-based) of sentence ``s`` gets the
    story position ``i`` + the words of the sentences before it, and so does its head (``HEAD`` 0
    = root stays 0). Comment lines, multiword-token ranges (``1-2``) and empty nodes (``1.1``) are
    skipped, so parse the corpus's own words as given (pre-tokenized input, one sentence per list).

    Args:
        conllu: CoNLL-U text, or the path of a ``.conllu`` file.
        story: the corpus's id of the story (the ``story`` column).
        words: the story's words in order (e.g. ``corpus.frame`` rows of the story): checked
            against the parse's ``FORM`` column.

    Returns:
        Frame with ``story``, ``position``, ``head_position``, ``relation`` (UD deprel), one row
        per word: the ``dependencies`` argument of :class:`ArcWindows` and
        :func:`phasewatch.measures.syntactic_scores`.
    """
    text = Path(conllu).read_text(encoding="utf-8") if isinstance(conllu, Path) else conllu
    rows, forms, offset, in_sentence = [], [], 0, 0
    for number, line in enumerate([*text.splitlines(), ""], start=1):
        if not line.strip():
            offset, in_sentence = offset + in_sentence, 0
            continue
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 10:
            raise ValueError(
                f"CoNLL-U line {number} has {len(fields)} tab-separated fields, 10 are due: "
                f"{line[:80]!r}"
            )
        if "-" in fields[0] or "." in fields[0]:
            continue
        index, head = int(fields[0]), int(fields[6])
        if index != in_sentence + 1:
            raise ValueError(f"CoNLL-U line {number}: ID {index} where {in_sentence + 1} was due")
        in_sentence += 1
        forms.append(fields[1])
        rows.append((story, offset + index, 0 if head == 0 else offset + head, fields[7]))
    if words is not None:
        words = [str(w) for w in words]
        pairs = enumerate(zip(forms, words, strict=False))
        mismatch = next((i for i, (a, b) in pairs if a != b), None)
        if mismatch is not None or len(forms) != len(words):
            where = mismatch if mismatch is not None else min(len(forms), len(words))
            raise ValueError(
                f"the parse of story {story!r} has {len(forms)} words, the corpus {len(words)}; "
                f"first difference at word {where + 1}: parse "
                f"{forms[where] if where < len(forms) else None!r}, corpus "
                f"{words[where] if where < len(words) else None!r}. Parse the corpus's words as "
                "given (stanza: tokenize_pretokenized=True; spaCy: Doc(nlp.vocab, words=...))"
            )
    return pd.DataFrame(rows, columns=["story", "position", "head_position", "relation"])


class ArcWindows(Dataset):
    """Windows of corpus stories as training examples that carry their dependency arcs.

    Each item is a dict ``{"input_ids": LongTensor[T], "token_heads": LongTensor[T]}`` (BOS
    included, ``T <= max_tokens``); batch them with :meth:`collate` (right padding, ``labels``
    with ``-100`` on padding). Windows are the syntactic score's: a story's words joined by single
    spaces, tokens assigned to words as for surprisal, cut at sentence boundaries (no arc crosses
    a window unless a sentence is longer than one) and packed greedily up to ``max_tokens``.

    Args:
        corpus: a ``ReadingTimeCorpus`` (or a frame with ``story``, ``position``, ``word``).
        tokenizer: any tokenizer :func:`phasewatch.measures.tokenization.encode_with_offsets`
            accepts.
        dependencies: frame with ``story``, ``position``, ``head_position`` (0 = root),
            ``relation``; default: ``corpus.dependencies`` (a corpus without arcs raises).
        max_tokens: window length in tokens, BOS included.
        stories: the stories to use (default: all of the corpus's).
        bos_token_id: ``"auto"`` (the tokenizer's BOS, else EOS, else none), an id, or ``None``.
        exclude_relations: relations that get no arc.

    Example::

        train = ArcWindows(corpus, tokenizer, max_tokens=128, stories=[1, 2, 3])
        loader = DataLoader(train, batch_size=16, shuffle=True, collate_fn=ArcWindows.collate)
    """

    def __init__(
        self,
        corpus: Any,
        tokenizer: Any,
        dependencies: pd.DataFrame | None = None,
        *,
        max_tokens: int,
        stories: Iterable | None = None,
        bos_token_id: int | str | None = _AUTO,
        exclude_relations: Iterable[str] = ("root",),
    ) -> None:
        frame = getattr(corpus, "frame", corpus)
        if dependencies is None:
            dependencies = getattr(corpus, "dependencies", None)
        if dependencies is None:  # never another corpus's arcs (issue 10)
            raise ValueError(
                f"ArcWindows needs dependency arcs: the corpus "
                f"{getattr(corpus, 'name', '(a frame)')!r} has none; pass `dependencies=` (story, "
                "position, head_position, relation; see dependencies_from_conllu) or a "
                "ReadingTimeCorpus that carries them (load_tsv(head=..., relation=...))"
            )
        available = list(dict.fromkeys(frame["story"].tolist()))
        chosen = available if stories is None else list(stories)
        unknown = [s for s in chosen if s not in set(available)]
        if unknown:
            raise ValueError(f"stories {unknown} are not in the corpus; it has {available}")
        bos = _bos_token_id(tokenizer, bos_token_id)
        prefix = [] if bos is None else [bos]
        if max_tokens - len(prefix) < 2:
            raise ValueError(f"`max_tokens` must leave room for two tokens, got {max_tokens}")
        arcs = _scored_arcs(dependencies, chosen, set(exclude_relations))
        relation_index = {r: i for i, r in enumerate(sorted(arcs["relation"].unique()))}
        story_frames = dict(tuple(frame.groupby("story", sort=False)))
        story_arcs = dict(tuple(arcs.groupby("story", sort=False)))
        self.items: list[dict[str, Tensor]] = []
        self.n_skipped = 0
        for story in chosen:
            rows = story_frames[story].sort_values("position")
            windows, skipped = _story_windows(
                rows,
                story_arcs.get(story, arcs.iloc[:0]),
                tokenizer,
                prefix,
                max_tokens - len(prefix),
                relation_index,
            )
            self.n_skipped += skipped
            for w in windows:
                self.items.append(
                    {
                        "input_ids": torch.tensor(w.input_ids, dtype=torch.long),
                        "token_heads": word_arcs_to_token_heads(
                            w.token_word, w.dependents, w.heads
                        ),
                        "token_word": torch.tensor(w.token_word, dtype=torch.long),
                    }
                )
        if not self.items:
            raise ValueError(f"no window with tokens in stories {chosen}")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return self.items[index]

    @property
    def n_arcs(self) -> int:
        """Token arcs in all windows (tokens with a head)."""
        return sum(int((item["token_heads"] >= 0).sum()) for item in self.items)

    @staticmethod
    def collate(items: list[dict[str, Tensor]], pad_token_id: int = 0) -> dict[str, Tensor]:
        """Right-pad to the longest window: ``input_ids`` (``pad_token_id``), ``token_heads``
        (``-1``), ``labels`` (``input_ids`` with ``-100`` on padding) and ``attention_mask``."""
        longest = max(len(item["input_ids"]) for item in items)
        input_ids = torch.full((len(items), longest), pad_token_id, dtype=torch.long)
        token_heads = torch.full((len(items), longest), NO_HEAD, dtype=torch.long)
        token_word = torch.full((len(items), longest), -1, dtype=torch.long)
        mask = torch.zeros(len(items), longest, dtype=torch.long)
        for i, item in enumerate(items):
            n = len(item["input_ids"])
            input_ids[i, :n] = item["input_ids"]
            token_heads[i, :n] = item["token_heads"]
            token_word[i, :n] = item["token_word"]
            mask[i, :n] = 1
        labels = input_ids.masked_fill(mask == 0, -100)
        return {
            "input_ids": input_ids,
            "token_heads": token_heads,
            "token_word": token_word,
            "labels": labels,
            "attention_mask": mask,
        }
