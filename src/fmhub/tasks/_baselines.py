"""Cheap baselines trained on the dataset's train split: is the foundation model worth it?

- text classification: TF-IDF (word 1–2-grams, sublinear tf) + logistic regression (scikit-learn);
- token classification: logistic regression on per-word features (the word, its shape, prefix and
  suffix, and its neighbours) — the classic feature-based tagger;
- language models: a unigram model of the tokenizer's tokens with add-one smoothing, scored on the
  very tokens the model was scored on.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["text_baseline", "token_baseline", "unigram_nll"]

_MAX_FEATURES = 200_000


def text_baseline(train_texts: list[str], train_labels: np.ndarray, texts: list[str], num_labels: int,
                  seed: int) -> np.ndarray:
    """Class probabilities ``(len(texts), num_labels)`` of TF-IDF + logistic regression fit on the train rows."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, max_features=_MAX_FEATURES)
    features = vectorizer.fit_transform([t or "" for t in train_texts])
    model = LogisticRegression(C=10.0, max_iter=2000, random_state=seed)
    model.fit(features, train_labels)
    return _full_probabilities(model, model.predict_proba(vectorizer.transform([t or "" for t in texts])),
                               num_labels)


def _full_probabilities(model: Any, probabilities: np.ndarray, num_labels: int) -> np.ndarray:
    """Columns for every label, zeros for labels the train split never had."""
    out = np.zeros((probabilities.shape[0], num_labels))
    out[:, model.classes_] = probabilities
    return out


def _word_features(words: list[str], i: int) -> dict[str, Any]:
    word = words[i]
    lower = word.lower()
    shape = "".join("X" if c.isupper() else "x" if c.isalpha() else "d" if c.isdigit() else c for c in word[:8])
    return {"w=" + lower: 1, "shape=" + shape: 1, "pre=" + lower[:3]: 1, "suf=" + lower[-3:]: 1,
            "title": word.istitle(), "upper": word.isupper(), "digit": any(c.isdigit() for c in word),
            "prev=" + (words[i - 1].lower() if i else "<s>"): 1,
            "next=" + (words[i + 1].lower() if i + 1 < len(words) else "</s>"): 1}


def token_baseline(train_words: list[list[str]], train_tags: list[list[int]], words: list[list[str]],
                   num_labels: int, seed: int) -> list[np.ndarray]:
    """Per-word tag probabilities (one ``(len(row), num_labels)`` array per row) of a feature-based tagger."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = DictVectorizer()
    features = vectorizer.fit_transform(_word_features(row, i) for row in train_words for i in range(len(row)))
    model = LogisticRegression(max_iter=500, random_state=seed)
    model.fit(features, np.concatenate([np.asarray(t, dtype=np.int64) for t in train_tags]))
    flat = vectorizer.transform(_word_features(row, i) for row in words for i in range(len(row)))
    probabilities = _full_probabilities(model, model.predict_proba(flat), num_labels) if flat.shape[0] else \
        np.zeros((0, num_labels))
    bounds = np.cumsum([0, *(len(row) for row in words)])
    return [probabilities[bounds[i]:bounds[i + 1]] for i in range(len(words))]


def unigram_nll(train_ids: list[list[int]], targets: list[np.ndarray], vocab: int) -> tuple[float, int]:
    """Summed negative log-likelihood (nats) of ``targets`` under an add-one unigram model of ``train_ids``."""
    counts = np.bincount(np.concatenate([np.asarray(r, dtype=np.int64) for r in train_ids] or
                                        [np.zeros(0, np.int64)]), minlength=vocab).astype(np.float64)
    log_p = np.log(counts + 1.0) - math.log(counts.sum() + len(counts))
    flat = np.concatenate(targets) if targets else np.zeros(0, np.int64)
    return float(-log_p[flat].sum()), int(flat.size)
