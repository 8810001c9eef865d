"""The Natural Stories corpus: self-paced reading times for 10 stories, 10,256 words.

Futrell, Gibson, Tily, Blank, Vishnevetsky, Piantadosi & Fedorenko (2021), Language Resources and
Evaluation 55(1):63–77; upstream ``languageMIT/naturalstories`` at the commit of the 2025
realignment, which re-aligned the per-reader ``processed_RTs.tsv`` (off by one position before);
``processed_wordinfo.tsv``, read here, is the same file as in the 2021-10-01 release. License
CC BY-NC-SA 4.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from phasewatch.corpora.errors import CorpusDataError
from phasewatch.corpora.resolve import data_file
from phasewatch.corpora.schema import ReadingTimeCorpus
from phasewatch.corpora.tsv import check_positions, numeric_column, read_tsv

NAME = "naturalstories"
COMMIT = "4700daad696e942f5aba23c957a7423d0de66612"
TOKENS_PATH = "naturalstories_RTS/all_stories.tok"
WORDINFO_PATH = "naturalstories_RTS/processed_wordinfo.tsv"
PARSES_PATH = "parses/ud/stories-aligned.conllx"
LICENSE = (
    "CC BY-NC-SA 4.0 (Creative Commons Attribution-NonCommercial-ShareAlike 4.0 International, "
    "https://creativecommons.org/licenses/by-nc-sa/4.0/)"
)
CITATION = (
    "Futrell, R., Gibson, E., Tily, H. J., Blank, I., Vishnevetsky, A., Piantadosi, S. T., & "
    "Fedorenko, E. (2021). The Natural Stories corpus: a reading-time corpus of English texts "
    "containing rare syntactic constructions. Language Resources and Evaluation, 55(1), 63–77. "
    "https://doi.org/10.1007/s10579-020-09503-7"
)
_CONLLX_COLUMNS = 10
_PUNCT = "punct"


def load(*, data_dir: str | Path | None = None, dependencies: bool = True) -> ReadingTimeCorpus:
    """Natural Stories in phasewatch's schema: one row per displayed word, 10,256 rows.

    Joins ``naturalstories_RTS/all_stories.tok`` (word, zone, item) with
    ``naturalstories_RTS/processed_wordinfo.tsv`` on (word, zone, item). Columns:

    - ``story`` (``item``, 1..10), ``position`` (``zone``, 1-based), ``word`` (as displayed),
    - ``rt``: ``meanItemRT``, the mean self-paced reading time in ms over the readers kept by the
      upstream exclusions (RTs within 100–3000 ms; readers with more than 4 of 6 comprehension
      answers right),
    - ``n_readers``: ``nItem``, the number of readers behind ``rt`` (about 83).

    ``dependencies`` holds the Universal Dependencies arcs of :func:`load_dependencies` (a third
    file, ``parses/ud/stories-aligned.conllx``); ``dependencies=False`` skips it, for PPP alone.

    Self-paced reading: ``default_spillover`` is 4 (the current word and 4 previous words enter
    the ΔLL regression, as in Aoyama & Wilcox, 2025).

    ``data_dir`` is resolved as in :func:`phasewatch.corpora.data_file`.

    Raises:
        CorpusDataError: a file is missing, does not match the manifest, or the join loses rows.
    """
    words = _read_words(data_file(NAME, TOKENS_PATH, data_dir=data_dir))
    info_path = data_file(NAME, WORDINFO_PATH, data_dir=data_dir)
    raw = read_tsv(info_path, ["word", "zone", "item", "nItem", "meanItemRT"])
    info = pd.DataFrame(
        {
            "story": numeric_column(raw, "item", info_path, integer=True),
            "position": numeric_column(raw, "zone", info_path, integer=True),
            "word": raw["word"],
            "rt": numeric_column(raw, "meanItemRT", info_path),
            "n_readers": numeric_column(raw, "nItem", info_path, integer=True),
        }
    )
    keys = ["story", "position", "word"]
    joined = words.merge(info, on=keys, how="outer", indicator=True)
    unmatched = joined[joined["_merge"] != "both"]
    if len(unmatched) or joined.duplicated(keys).any():
        raise CorpusDataError(
            info_path,
            f"does not join one-to-one with {TOKENS_PATH} on (word, zone, item)",
            expected=f"one row per row of {TOKENS_PATH} ({len(words)} words)",
            found=f"{len(info)} rows, {len(unmatched)} unmatched, e.g. "
            f"{unmatched[[*keys, '_merge']].head(3).to_dict('records')}",
            fix="use the files of the pinned upstream commit (see the manifest)",
        )
    frame = joined.drop(columns="_merge").sort_values(["story", "position"], kind="stable")
    return ReadingTimeCorpus(
        name=NAME,
        frame=frame.reset_index(drop=True),
        license=LICENSE,
        citation=CITATION,
        measure="self-paced reading",
        default_spillover=4,
        dependencies=load_dependencies(data_dir=data_dir) if dependencies else None,
        language="en",
        extras={
            "rt": "meanItemRT (ms), upstream exclusions applied",
            "upstream": f"https://github.com/languageMIT/naturalstories/tree/{COMMIT}",
        },
    )


def _read_words(path: Path) -> pd.DataFrame:
    """``all_stories.tok`` as (story, position, word) in file order."""
    raw = read_tsv(path, ["word", "zone", "item"])
    words = pd.DataFrame(
        {
            "story": numeric_column(raw, "item", path, integer=True),
            "position": numeric_column(raw, "zone", path, integer=True),
            "word": raw["word"],
        }
    )
    check_positions(words, path)
    return words


@dataclass(frozen=True)
class _Token:
    """One UD token: its whitespace word (story, position), head index in its sentence, deprel."""

    story: int
    position: int
    head: int  # 1-based index into the sentence, 0 = root
    relation: str


def load_dependencies(*, data_dir: str | Path | None = None) -> pd.DataFrame:
    """Universal Dependencies arcs between Natural Stories words (one per word, 10,256 rows).

    Reads ``parses/ud/stories-aligned.conllx`` (CoNLL-X; last column
    ``TokenId=<story>.<word>[.<sub>]``). A displayed word may hold several UD tokens
    (``England,`` = ``England`` + ``,``); the arc of the word is the arc of its token whose head
    lies outside the word — the first such token that is not punctuation, else the first such token
    (so ``'The`` takes ``The → det``, not the quote's ``punct`` arc). Its head token is mapped to
    the word that contains it.

    Returns:
        DataFrame with ``story``, ``position`` (dependent word, 1-based, as in :func:`load`),
        ``head_position`` (head word in the same story; 0 = root) and ``relation`` (UD deprel),
        sorted by story then position.

    Raises:
        CorpusDataError: the file is missing, does not match the manifest, cannot be parsed, or its
            words do not align with ``all_stories.tok`` (per-story word counts are reported).
    """
    words = _read_words(data_file(NAME, TOKENS_PATH, data_dir=data_dir))
    parse_path = data_file(NAME, PARSES_PATH, data_dir=data_dir)
    arcs = []
    for sentence in _read_conllx(parse_path):
        arcs.extend(_word_arcs(sentence, parse_path))
    frame = pd.DataFrame(arcs, columns=["story", "position", "head_position", "relation"])
    _check_alignment(frame, words, parse_path)
    return frame.sort_values(["story", "position"], kind="stable").reset_index(drop=True)


def _read_conllx(path: Path) -> list[list[_Token]]:
    """Sentences of UD tokens; a malformed line raises :class:`CorpusDataError` with its number."""
    sentences: list[list[_Token]] = [[]]
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            fields = line.rstrip("\n").split("\t")
            if fields == [""]:
                if sentences[-1]:
                    sentences.append([])
                continue
            try:
                sentences[-1].append(_parse_token(fields, len(sentences[-1]) + 1))
            except ValueError as exc:
                raise CorpusDataError(
                    path,
                    f"line {number} is not a CoNLL-X token line: {exc}",
                    expected=f"{_CONLLX_COLUMNS} tab-separated fields: ID FORM … HEAD DEPREL … "
                    "TokenId=<story>.<word>[.<sub>], IDs 1, 2, … within each sentence",
                    found=repr(line.rstrip("\n")[:120]),
                ) from exc
    if not sentences[-1]:
        sentences.pop()
    for sentence in sentences:
        for token in sentence:
            if token.head > len(sentence):
                raise CorpusDataError(
                    path,
                    f"a token of word {token.story}.{token.position} has head {token.head} "
                    f"outside its sentence of {len(sentence)} tokens",
                    expected="HEAD between 0 and the sentence length",
                )
    return sentences


def _parse_token(fields: list[str], expected_id: int) -> _Token:
    if len(fields) != _CONLLX_COLUMNS:
        raise ValueError(f"{len(fields)} fields")
    if int(fields[0]) != expected_id:
        raise ValueError(f"ID {fields[0]} where {expected_id} was due")
    key, _, code = fields[9].partition("=")
    parts = code.split(".")
    if key != "TokenId" or len(parts) not in (2, 3):
        raise ValueError(f"last field {fields[9]!r}")
    if not fields[7]:
        raise ValueError("empty DEPREL")
    return _Token(int(parts[0]), int(parts[1]), int(fields[6]), fields[7])


def _word_arcs(sentence: list[_Token], path: Path) -> list[tuple[int, int, int, str]]:
    """One (story, position, head_position, relation) per word of the sentence, in order."""
    outward: dict[tuple[int, int], list[tuple[int, str]]] = {}
    for token in sentence:
        word = (token.story, token.position)
        head_word = None if token.head == 0 else sentence[token.head - 1]
        if head_word is not None and (head_word.story, head_word.position) == word:
            outward.setdefault(word, [])
            continue  # an arc inside the word (``England`` ← ``,`` would be one)
        if head_word is not None and head_word.story != token.story:
            raise CorpusDataError(
                path,
                f"word {token.story}.{token.position} has its head in story {head_word.story}",
                expected="sentences within one story",
            )
        head_position = 0 if head_word is None else head_word.position
        outward.setdefault(word, []).append((head_position, token.relation))
    arcs = []
    for (story, position), candidates in outward.items():
        if not candidates:  # impossible in a tree: some token of a word has its head outside it
            raise CorpusDataError(
                path,
                f"no token of word {story}.{position} has its head outside the word (a cycle)",
                expected="each sentence a tree",
            )
        chosen = next((c for c in candidates if c[1] != _PUNCT), candidates[0])
        arcs.append((story, position, *chosen))
    return arcs


def _check_alignment(arcs: pd.DataFrame, words: pd.DataFrame, parse_path: Path) -> None:
    """The parsed words must be exactly the words of ``all_stories.tok``, story by story."""
    parsed = arcs.groupby("story").size()
    corpus = words.groupby("story").size()
    same_keys = set(arcs[["story", "position"]].itertuples(index=False)) == set(
        words[["story", "position"]].itertuples(index=False)
    )
    if same_keys and len(arcs) == len(words):
        return
    counts = pd.DataFrame({"corpus": corpus, "parse": parsed}).fillna(0).astype(int)
    differing = counts[counts["corpus"] != counts["parse"]]
    shown = differing if len(differing) else counts
    raise CorpusDataError(
        parse_path,
        f"its words do not align with {TOKENS_PATH}",
        expected=f"one arc per corpus word: {len(words)} words, stories {corpus.to_dict()}",
        found=f"{len(arcs)} arcs; words per story (corpus vs parse): "
        + ", ".join(f"story {s}: {r.corpus} vs {r.parse}" for s, r in shown.iterrows()),
        fix="use the parse and token files of the same pinned upstream commit (see the manifest)",
    )
