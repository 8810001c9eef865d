"""Syntactic attention scores on a hand-parsed corpus with planted attention."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from phasewatch import keys
from phasewatch.corpora.schema import ReadingTimeCorpus
from phasewatch.measures.metrics import SyntacticAttentionScore, predict_dependency_heads
from phasewatch.measures.snapshot import HeadMeasure
from phasewatch.measures.syntactic import syntactic_scores
from phasewatch.models import as_probe_model

BOS = "<bos>"
# story, position, word, head position (0 = root), relation: a small hand-made UD-style parse
ROWS = [
    (1, 1, "The", 3, "det"),
    (1, 2, "old", 3, "amod"),
    (1, 3, "dog", 4, "nsubj"),
    (1, 4, "chased", 0, "root"),
    (1, 5, "a", 6, "det"),
    (1, 6, "cat.", 4, "obj"),
    (1, 7, "She", 8, "nsubj"),
    (1, 8, "saw", 0, "root"),
    (1, 9, "him", 8, "obj"),
    (1, 10, "yesterday.", 8, "advmod"),
    (2, 1, "Birds", 2, "nsubj"),
    (2, 2, "sing", 0, "root"),
    (2, 3, "loudly", 2, "advmod"),
    (2, 4, "in", 5, "case"),
    (2, 5, "spring.", 2, "obl"),
    (2, 6, "The", 7, "det"),
    (2, 7, "children", 8, "nsubj"),
    (2, 8, "played", 0, "root"),
    (2, 9, "happily", 8, "advmod"),
    (2, 10, "outside.", 8, "advmod"),
    (2, 11, "Rainbows", 12, "nsubj"),
    (2, 12, "appeared.", 0, "root"),
]
TABLE = pd.DataFrame(ROWS, columns=["story", "position", "word", "head_position", "relation"])
DEPENDENCIES = TABLE[["story", "position", "head_position", "relation"]]
CORPUS = ReadingTimeCorpus("toy", TABLE[["story", "position", "word"]].assign(rt=300.0))
ARCS = DEPENDENCIES[DEPENDENCIES["relation"] != "root"]


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    """Byte-level BPE with few merges, so most words are split into several tokens."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=280,
        special_tokens=[BOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(list(CORPUS.texts.values()), trainer)
    assert tok.token_to_id(BOS) == 0
    return tok


class PlantedSyntaxModel(nn.Module):
    """Attention read off the gold parse (head 0), previous word (head 1), uniform (head 2).

    Words are found from the tokens alone (a token starting with "Ġ" starts a word; id 0 is BOS or
    padding), then located in the story, so the model works on any window of any story.
    Head 0, at every token of word q: 0.6 on q's head if it lies left, the rest shared by q's left
    dependents (all of it if q's head lies right); BOS if neither. A word's weight sits on its
    first token.
    """

    num_layers, num_heads, max_length = 1, 3, 256

    def __init__(self, tokenizer: Tokenizer):
        super().__init__()
        self.tokenizer = tokenizer
        self.vocab_size = tokenizer.get_vocab_size()
        self.stories = {s: g["word"].tolist() for s, g in TABLE.groupby("story")}
        self.heads = {s: (g["head_position"] - 1).tolist() for s, g in TABLE.groupby("story")}
        self.sequences_seen = 0

    def forward_with_attentions(self, input_ids):
        batch, tokens = input_ids.shape
        attention = torch.zeros(batch, 3, tokens, tokens)
        for b in range(batch):
            attention[b] = self._pattern(input_ids[b].tolist())
        self.sequences_seen += batch
        return torch.zeros(batch, tokens, self.vocab_size), [attention]

    def _pattern(self, ids):
        word_of, first_token, pieces = [], [], []
        for t, i in enumerate(ids):
            if i == 0:
                word_of.append(-1)
                continue
            if not first_token or self.tokenizer.id_to_token(i).startswith("Ġ"):
                first_token.append(t)
                pieces.append([])
            pieces[-1].append(i)
            word_of.append(len(first_token) - 1)
        words = [self.tokenizer.decode(p).strip() for p in pieces]
        story, start = next(
            (s, k)
            for s, story_words in self.stories.items()
            for k in range(len(story_words))
            if story_words[k : k + len(words)] == words
        )
        local_head = [h - start for h in self.heads[story][start : start + len(words)]]
        tokens = len(ids)
        pattern = torch.zeros(3, tokens, tokens)
        pattern[2] = torch.tril(torch.ones(tokens, tokens))
        pattern[2] /= pattern[2].sum(-1, keepdim=True)
        for t, q in enumerate(word_of):
            pattern[0, t, 0] = pattern[1, t, 0] = 1.0  # BOS unless overwritten
            if q < 0:
                continue
            targets = {}
            left_dependents = [d for d in range(q) if local_head[d] == q]
            head_is_left = 0 <= local_head[q] < q
            if head_is_left:
                targets[local_head[q]] = 0.6 if left_dependents else 1.0
            for d in left_dependents:
                targets[d] = (0.4 if head_is_left else 1.0) / len(left_dependents)
            if targets:
                pattern[0, t, 0] = 0.0
                for w, weight in targets.items():
                    pattern[0, t, first_token[w]] = weight
            if q > 0:
                pattern[1, t, 0] = 0.0
                pattern[1, t, first_token[q - 1]] = 1.0
        return pattern


def adjacent_fraction(arcs: pd.DataFrame) -> float:
    """A previous-word head predicts exactly the arcs between neighbours (left: h = d-1 by
    outgoing attention; right: h = d+1, the next word attending back to d)."""
    return float(((arcs["position"] - arcs["head_position"]).abs() == 1).mean())


def test_planted_parse_head_scores_one_and_previous_word_head_the_adjacent_arcs(tokenizer):
    model = PlantedSyntaxModel(tokenizer)
    result = syntactic_scores(model, tokenizer, CORPUS, DEPENDENCIES, bos_token_id=0)
    assert result.n_arcs == len(ARCS) == 17 and result.n_skipped == 0
    assert result.per_head.shape == (1, 3)
    assert result.per_head[0, 0] == pytest.approx(1.0)
    assert result.per_head[0, 1] == pytest.approx(adjacent_fraction(ARCS))
    assert set(result.per_relation) == set(ARCS["relation"])
    for relation, (_, uas) in result.per_relation.items():
        assert uas == pytest.approx(1.0), relation
    assert result.per_relation["obl"] == ((0, 0), pytest.approx(1.0))  # only head 0 gets obl
    assert result.arcs_per_relation == ARCS["relation"].value_counts().to_dict()
    assert "n_arcs=17" in repr(result)


def test_windows_cut_at_sentences_keep_every_arc(tokenizer):
    longest_sentence = max(
        len(tokenizer.encode(" " + s).ids) for s in ("Rainbows appeared.", "She saw him yesterday.")
    )
    model = PlantedSyntaxModel(tokenizer)
    whole = syntactic_scores(model, tokenizer, CORPUS, DEPENDENCIES, bos_token_id=0)
    assert model.sequences_seen == 2  # one window per story
    model.sequences_seen = 0
    windowed = syntactic_scores(
        model, tokenizer, CORPUS, DEPENDENCIES, bos_token_id=0, max_tokens=longest_sentence + 12
    )
    assert model.sequences_seen > 2
    assert windowed.n_arcs == 17 and windowed.n_skipped == 0
    torch.testing.assert_close(windowed.per_head[:, :2], whole.per_head[:, :2])


def test_sentences_longer_than_a_window_are_split_and_their_crossing_arcs_skipped(tokenizer):
    model = PlantedSyntaxModel(tokenizer)
    result = syntactic_scores(
        model, tokenizer, CORPUS, DEPENDENCIES, bos_token_id=0, max_tokens=8, batch_size=3
    )
    assert result.n_skipped > 0 and result.n_arcs + result.n_skipped == 17
    assert result.per_head[0, 0] == pytest.approx(1.0)


def test_max_stories_and_excluded_relations_restrict_the_arcs(tokenizer):
    model = PlantedSyntaxModel(tokenizer)
    result = syntactic_scores(
        model,
        tokenizer,
        CORPUS,
        DEPENDENCIES,
        bos_token_id=0,
        max_stories=1,
        exclude_relations=("root", "det"),
    )
    story_one = ARCS[(ARCS["story"] == 1) & (ARCS["relation"] != "det")]
    assert result.n_arcs == len(story_one) == 6
    assert result.per_head[0, 1] == pytest.approx(adjacent_fraction(story_one))


def test_tiny_gpt2_with_a_transformers_tokenizer(tokenizer):
    hf_tokenizer = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=BOS)
    torch.manual_seed(0)
    config = GPT2Config(
        n_layer=2,
        n_head=2,
        n_embd=32,
        vocab_size=tokenizer.get_vocab_size(),
        n_positions=64,
        bos_token_id=0,
        eos_token_id=0,
    )
    model = GPT2LMHeadModel(config)
    result = syntactic_scores(model, hf_tokenizer, CORPUS, DEPENDENCIES)  # BOS from tokenizer
    assert result.per_head.shape == (2, 2) and result.n_arcs == 17
    assert ((result.per_head >= 0) & (result.per_head <= 1)).all()
    assert model.config._attn_implementation == "sdpa"


def _four_word_arcs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Causal word attention [1, 1, 4, 4] and four arcs (dependents, gold heads) worked by hand."""
    attention = torch.tensor(
        [
            [1.0, 0.0, 0.0, 0.0],
            [0.9, 0.1, 0.0, 0.0],
            [0.5, 0.2, 0.3, 0.0],
            [0.1, 0.3, 0.0, 0.6],
        ]
    )[None, None]
    return attention, torch.tensor([2, 1, 0, 3]), torch.tensor([0, 3, 1, 2])


def test_predicted_heads_use_outgoing_attention_left_and_incoming_right_never_self():
    attention, dependents, heads = _four_word_arcs()
    predicted = predict_dependency_heads(attention, dependents, heads)
    # d=2 (head left): row 2 → 0; d=1 (head right): column 1 below → 3 (0.3 > 0.2);
    # d=0 (head right): column 0 below → 1 (0.9); d=3 (head left): row 3 without self → 1
    assert predicted.tolist() == [[[0, 3, 1, 1]]]
    metric = SyntacticAttentionScore(1, 1, num_relations=2)
    metric.update(attention, dependents, heads, torch.tensor([0, 0, 1, 1]))
    values = metric.compute()
    assert values["per_head"].item() == pytest.approx(0.75)  # the last arc's head is 2, not 1
    torch.testing.assert_close(values["per_relation"].flatten(), torch.tensor([1.0, 0.5]))
    torch.testing.assert_close(values["arcs_per_relation"], torch.tensor([2.0, 2.0]))


def test_missing_dependency_columns_are_named(tokenizer):
    with pytest.raises(ValueError, match=r"lacks the columns \['head_position'\]"):
        syntactic_scores(
            PlantedSyntaxModel(tokenizer),
            tokenizer,
            CORPUS,
            DEPENDENCIES.drop(columns="head_position"),
        )


def test_undirected_rule_is_one_argmax_over_row_then_column_with_self_a_candidate():
    attention, dependents, heads = _four_word_arcs()
    predicted = predict_dependency_heads(attention, dependents, heads, rule="undirected")
    # d=2: row (0.5, 0.2, 0.3) beats column (0.3, 0.0) → 0; d=1: row 0.9 → 0 (blind to the gold
    # head on the right); d=0: row and column tie at 1.0 on itself → 0 (self, a miss);
    # d=3: itself, 0.6 → 3
    assert predicted.tolist() == [[[0, 0, 0, 3]]]
    with pytest.raises(ValueError, match="`rule` can be directed, undirected, got 'paper'"):
        predict_dependency_heads(attention, dependents, heads, rule="paper")


# Two windows of hand-built word attention with known arcs (dependent, head, relation). No
# dependent is a window's first word: its one visible key is itself, which the undirected rule
# always picks (the weight 1.0 of a one-key row).
WINDOW_ARCS = [
    [(1, 2, 0), (3, 4, 0), (5, 6, 0), (2, 4, 1), (6, 4, 1), (7, 4, 2), (8, 6, 2), (9, 4, 2)],
    [(1, 2, 0), (3, 2, 1), (4, 3, 2), (5, 3, 2), (6, 5, 1)],
]
# Planted heads: (layer 0, head 0) finds relation 0 by incoming attention, (1, 2) relation 2 by
# outgoing attention, so the best head differs between relations.
PLANTED = {0: (0, 0), 2: (1, 2)}


def planted_word_attention(words: int, arcs, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, words, words, generator=generator)
    for d, h, r in arcs:
        if r in PLANTED:
            layer, head = PLANTED[r]
            query, key = (d, h) if h < d else (h, d)
            logits[layer, head, query, key] += 6.0
    causal = torch.ones(words, words, dtype=torch.bool).tril()
    return logits.masked_fill(~causal, float("-inf")).softmax(-1)


def loop_prediction(attention: list, d: int, h: int, rule: str) -> int:
    """The prediction rule written out: candidates in order, a strictly larger value wins."""
    words = len(attention)
    if rule == "undirected":
        candidates = [(attention[d][k], k) for k in range(d + 1)]
        candidates += [(attention[q][d], q) for q in range(d, words)]
    elif h < d:
        candidates = [(attention[d][k], k) for k in range(d)]
    else:
        candidates = [(attention[q][d], q) for q in range(d + 1, words)]
    best_value, best_word = float("-inf"), None
    for value, word in candidates:
        if value > best_value:
            best_value, best_word = value, word
    return best_word


def loop_scores(windows, rule: str) -> tuple[float, list[list[float]]]:
    """SAS (best head per relation, hits pooled) and each head's accuracy, by plain loops."""
    hits: dict[int, dict[tuple[int, int], int]] = {}
    total = {(layer, head): 0 for layer in range(2) for head in range(3)}
    n_arcs = 0
    for attention, arcs in windows:
        for d, h, r in arcs:
            n_arcs += 1
            for layer in range(2):
                for head in range(3):
                    rows = attention[layer, head].tolist()
                    hit = int(loop_prediction(rows, d, h, rule) == h)
                    by_head = hits.setdefault(r, {})
                    by_head[(layer, head)] = by_head.get((layer, head), 0) + hit
                    total[(layer, head)] += hit
    sas = sum(max(by_head.values()) for by_head in hits.values()) / n_arcs
    per_head = [[total[(layer, head)] / n_arcs for head in range(3)] for layer in range(2)]
    return sas, per_head


@pytest.mark.parametrize("rule", ["directed", "undirected"])
def test_sas_is_the_best_head_per_relation_pooled_and_beats_the_best_single_head(rule):
    windows = [
        (planted_word_attention(10, WINDOW_ARCS[0], seed=0), WINDOW_ARCS[0]),
        (planted_word_attention(7, WINDOW_ARCS[1], seed=1), WINDOW_ARCS[1]),
    ]
    metric = SyntacticAttentionScore(2, 3, num_relations=3, rule=rule)
    for attention, arcs in windows:
        dependents, heads, relations = (torch.tensor(column) for column in zip(*arcs, strict=True))
        metric.update(attention, dependents, heads, relations)
    values = metric.compute()
    expected_sas, expected_per_head = loop_scores(windows, rule)
    assert float(values["sas"]) == pytest.approx(expected_sas, abs=1e-6)
    torch.testing.assert_close(values["per_head"], torch.tensor(expected_per_head))
    # the planted heads find all 4 relation-0 and all 5 relation-2 arcs of the 13: SAS counts
    # both, no single head can, so SAS exceeds the best single head by at least one arc
    assert values["per_relation"][0, 0, 0] == 1.0 and values["per_relation"][2, 1, 2] == 1.0
    assert float(values["sas"]) >= 9 / 13
    assert float(values["sas"]) >= float(values["per_head"].max()) + 1 / 13 - 1e-6


def test_heads_sas_is_logged_with_the_best_single_head_and_is_at_least_it(tokenizer):
    hf_tokenizer = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=BOS)
    torch.manual_seed(1)
    config = GPT2Config(
        n_layer=2, n_head=4, n_embd=32, vocab_size=tokenizer.get_vocab_size(), n_positions=128
    )
    model = GPT2LMHeadModel(config)
    measure = HeadMeasure(seq_len=8, probe_batch=2, corpus=CORPUS, dependencies=DEPENDENCIES)
    scalars, per_head = measure.measure(as_probe_model(model), hf_tokenizer)
    direct = syntactic_scores(model, hf_tokenizer, CORPUS, DEPENDENCIES, max_stories=2)
    assert scalars[keys.HEADS_SAS] == pytest.approx(direct.sas)
    assert scalars[keys.HEADS_SYNTACTIC_MAX] == pytest.approx(float(direct.per_head.max()))
    assert scalars[keys.HEADS_SAS] >= scalars[keys.HEADS_SYNTACTIC_MAX]
    # SAS from the per-relation bests: sum_r UAS_r · n_r / N
    pooled = sum(uas * direct.arcs_per_relation[r] for r, (_, uas) in direct.per_relation.items())
    assert direct.sas == pytest.approx(pooled / direct.n_arcs)
    torch.testing.assert_close(per_head["syntactic"], direct.per_head)


def test_arcs_of_one_relation_are_scored(tokenizer):
    # torchmetrics squeezes a one-element compute() output to a 0-dim tensor: the per-relation
    # counts of a single relation were indexed as a vector and raised IndexError
    one_relation = DEPENDENCIES.assign(relation="dep")
    model = PlantedSyntaxModel(tokenizer)
    result = syntactic_scores(model, tokenizer, CORPUS, one_relation, bos_token_id=0)
    assert result.arcs_per_relation == {"dep": 17}
    assert result.per_relation["dep"] == ((0, 0), pytest.approx(1.0))
    assert result.sas == pytest.approx(1.0)


def test_a_corpus_without_arcs_is_refused_not_scored_against_other_arcs(tokenizer):
    # the default used to be the Natural Stories parses, whatever the corpus
    model = PlantedSyntaxModel(tokenizer)
    with pytest.raises(ValueError, match=r"carries none; pass `dependencies=`"):
        syntactic_scores(model, tokenizer, CORPUS, bos_token_id=0)
