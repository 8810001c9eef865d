"""Cases a user's trial found already right (issue 9), kept right: bf16 models."""

from __future__ import annotations

import copy

import numpy as np
import torch
from tiny_models import tiny_gpt2

from phasewatch.corpora import ReadingTimeCorpus
from phasewatch.measures import all_head_scores, word_surprisal
from phasewatch.models import as_probe_model


def test_a_bf16_model_measures_like_its_float32_weights(ns_corpus, ns_tokenizer):
    """Probes of a bfloat16 model: finite, and within bf16 rounding of the float32 model's."""
    full = tiny_gpt2(len(ns_tokenizer), n_positions=128)
    half = copy.deepcopy(full).to(torch.bfloat16)
    scores32 = all_head_scores(as_probe_model(full), seq_len=20, batch_size=4)
    scores16 = all_head_scores(as_probe_model(half), seq_len=20, batch_size=4)
    for kind, expected in scores32.items():
        got = scores16[kind].float()
        assert torch.isfinite(got).all(), kind
        assert torch.allclose(got, expected, atol=1e-4), kind  # measured: <= 1.3e-5
    assert next(half.parameters()).dtype == torch.bfloat16  # the probe did not cast the model

    frame = ns_corpus.frame[ns_corpus.frame["story"] == 1].head(120).reset_index(drop=True)
    story = ReadingTimeCorpus("story 1, first words", frame)
    bits32 = word_surprisal(full, ns_tokenizer, story)
    bits16 = word_surprisal(half, ns_tokenizer, story)
    assert np.isfinite(bits16).all()
    # measured: at most 0.005 bits apart per word (mean 28.7 bits), 2e-5 bits in the mean
    assert np.abs(bits16 - bits32).max() < 0.05
    assert abs(bits16.mean() - bits32.mean()) < 0.005
