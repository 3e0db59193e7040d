"""Sensitivity from narratives by meaning: a linear model over static word embeddings.

The lexicon (:mod:`crossbeat.taxonomy.narrative`) finds the wordings it was written
for; measured on narratives written after it was tuned it caught 0.86 of the sensitive
ones. This module catches the others by meaning. A narrative is lower-cased, split into
sub-word tokens by the tokenizer of WordLlama (``wordllama`` on PyPI, whose wheel ships
its 256-dimension token embeddings: offline, no download) and read as the mean of its
token vectors (and their maximum). Texts about the same kind of event have near
vectors even when their words differ. Two logistic regressions, fitted on the ``tune``
split of the labelled set (:mod:`crossbeat.taxonomy.sensitivity_accuracy`), read a
narrative: one over that embedding, one over its bag of lemmas and lemma pairs (the
wordings seen in training, "gave her a hiding"); their mean probability decides:

* "is this narrative sensitive at all", with a threshold chosen for recall
  (out-of-fold: each writing batch of the set predicted by models fitted without it,
  so that the threshold reflects text the models have not seen);
* per flag, which flag a sensitive narrative gets.

Negated cues (the lexicon's negation: "not a domestic", "no children present") are
removed from the text before the model reads it (:func:`reading`).

The model only reads texts of :data:`MIN_WORDS` words or more (narratives, not
offence codes or short descriptions, which the keyword rules read). It only adds
flags: a text the rules flag keeps their flags. Its file
``data/narrative_model.npz`` carries the sensitivity rules version it was fitted with,
so retraining means a new :func:`crossbeat.taxonomy.sensitivity.rules_version`.

Refit with ``python -m crossbeat.taxonomy.narrative_model`` after changing the
labelled set.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import sparse

from crossbeat.model import Sensitivity
from crossbeat.taxonomy.narrative import find_cues, tokenize
from crossbeat.taxonomy.nibrs import TaxonomyError

MODEL_FILE = resources.files("crossbeat.taxonomy") / "data" / "narrative_model.npz"
#: Texts shorter than this (in words) are left to the rules: codes and descriptions.
MIN_WORDS = 5
#: The flags the model can give, in the order of its per-flag weights.
FLAGS: tuple[Sensitivity, ...] = tuple(Sensitivity)
_WORD = re.compile(r"\w+")
_BATCH = re.compile(r"[a-z]+")

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class _Embedder:
    vectors: NDArray[np.float32]
    tokenizer: Any


@cache
def _embedder() -> _Embedder:
    """Load WordLlama's shipped token embeddings and tokenizer (once per process).

    The files are found through the installed distribution, without importing the
    ``wordllama`` package (whose import configures the root logger).
    """
    from importlib.metadata import PackageNotFoundError, distribution

    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    try:
        dist = distribution("wordllama")
    except PackageNotFoundError as exc:
        raise TaxonomyError(
            "narrative sensitivity needs the wordllama package: pip install 'wordllama>=0.4'"
        ) from exc
    weights = Path(str(dist.locate_file("wordllama/weights/l2_supercat_256.safetensors")))
    config = Path(str(dist.locate_file("wordllama/tokenizers/l2_supercat_tokenizer_config.json")))
    try:
        vectors = load_file(str(weights))["embedding.weight"].astype(np.float32)
        tokenizer = Tokenizer.from_file(str(config))
    except Exception as exc:  # safetensors and tokenizers raise their own error types
        raise TaxonomyError(f"cannot load the wordllama embeddings ({weights}): {exc}") from exc
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return _Embedder(vectors, tokenizer)


def embed(texts: Sequence[str]) -> NDArray[np.float32]:
    """Return one vector per text: the mean and the maximum of its token embeddings.

    Both halves have unit length. The mean says what the text is about; the maximum
    keeps a single strong word ("groped") from being drowned by a long routine text.

    Examples
    --------
    >>> v = embed(["groped the victim", "fondled a passenger"])
    >>> v.shape
    (2, 512)
    >>> [round(float(np.linalg.norm(v[0, half])), 3) for half in (slice(0, 256), slice(256, None))]
    [1.0, 1.0]
    """
    emb = _embedder()
    dim = emb.vectors.shape[1]
    out = np.zeros((len(texts), 2 * dim), dtype=np.float32)
    encoded = emb.tokenizer.encode_batch([t.lower() for t in texts], add_special_tokens=False)
    for i, enc in enumerate(encoded):
        if enc.ids:
            tokens = emb.vectors[enc.ids]
            mean = tokens.mean(axis=0)
            top = tokens.max(axis=0)
            out[i, :dim] = mean / (np.linalg.norm(mean) or 1.0)
            out[i, dim:] = top / (np.linalg.norm(top) or 1.0)
    return out


def reading(text: str) -> str:
    """Return the words of a text the model reads: without the negated cues.

    The lexicon's negation (:func:`crossbeat.taxonomy.narrative.find_cues`) marks weak
    cues a negator cancels ("not a domestic", "no children present"); the model does not
    see them, so a negated word cannot make a text sensitive by meaning either. Acts,
    relationships and ages are never negatable, so this cannot hide a victim.

    Examples
    --------
    >>> reading("Officers attended; not a domestic. No children were present.")
    'officers attended ; not a . no were present .'
    """
    tokens, hits = find_cues(text)
    dropped = {i for h in hits if h.negated for i in range(h.start, h.end)}
    return " ".join(t.word for i, t in enumerate(tokens) if i not in dropped)


def bag(text: str) -> frozenset[str]:
    """Return the lemmas of a text and its pairs of neighbouring lemmas.

    Examples
    --------
    >>> sorted(bag("He groped her."))
    ['grope', 'grope_her', 'he', 'he_grope', 'her']
    """
    lemmas = [t.lemma for t in tokenize(text) if t.word.isalnum()]
    return frozenset(lemmas) | {f"{a}_{b}" for a, b in zip(lemmas, lemmas[1:], strict=False)}


def _bag_matrix(bags: Sequence[frozenset[str]], vocab: Mapping[str, int]) -> sparse.csr_matrix:
    rows, cols = [], []
    for i, b in enumerate(bags):
        for term in b:
            j = vocab.get(term)
            if j is not None:
                rows.append(i)
                cols.append(j)
    data = np.ones(len(rows))
    return sparse.csr_matrix((data, (rows, cols)), shape=(len(bags), len(vocab)))


@dataclass(frozen=True)
class NarrativeModel:
    """Fitted weights (bias last): two "sensitive at all" models and one per flag.

    The probability that a narrative is sensitive is the mean of two logistic
    regressions: one over its embedding (meaning, new words), one over its bag of
    lemmas and lemma pairs (wordings seen in training).
    """

    version: str
    threshold: float
    any_weights: FloatArray
    vocabulary: Mapping[str, int]
    bag_weights: FloatArray
    flag_weights: FloatArray
    flag_bag_weights: FloatArray
    flag_thresholds: FloatArray

    def probabilities(self, texts: Sequence[str]) -> FloatArray:
        """Return P(sensitive) for each text."""
        read = [reading(t) for t in texts]
        return self._probabilities(embed(read).astype(np.float64), [bag(t) for t in read])

    def _probabilities(
        self, vectors: NDArray[np.floating[Any]], bags: Sequence[frozenset[str]]
    ) -> FloatArray:
        by_meaning = _sigmoid(vectors @ self.any_weights[:-1] + self.any_weights[-1])
        words = _bag_matrix(bags, self.vocabulary)
        by_words = _sigmoid(words @ self.bag_weights[:-1] + self.bag_weights[-1])
        return np.asarray((by_meaning + by_words) / 2, dtype=np.float64)

    def flags_for(
        self, vector: NDArray[np.floating[Any]], words: frozenset[str]
    ) -> frozenset[Sensitivity]:
        """Return the flags a narrative judged sensitive gets (at least the likeliest)."""
        by_meaning = _sigmoid(self.flag_weights[:, :-1] @ vector + self.flag_weights[:, -1])
        row = _bag_matrix([words], self.vocabulary)
        by_words = _sigmoid(
            np.asarray(row @ self.flag_bag_weights[:, :-1].T)[0] + self.flag_bag_weights[:, -1]
        )
        p = (by_meaning + by_words) / 2
        chosen = {FLAGS[i] for i in range(len(FLAGS)) if p[i] >= self.flag_thresholds[i]}
        return frozenset(chosen or {FLAGS[int(np.argmax(p / self.flag_thresholds))]})


def _sigmoid(z: FloatArray) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))), dtype=np.float64)


@cache
def model() -> NarrativeModel:
    """Load the shipped model (once per process).

    Raises
    ------
    TaxonomyError
        When the file is missing or malformed.
    """
    try:
        with MODEL_FILE.open("rb") as fh, np.load(fh) as data:
            return NarrativeModel(
                version=str(data["version"]),
                threshold=float(data["threshold"]),
                any_weights=data["any_weights"].astype(np.float64),
                vocabulary={str(w): i for i, w in enumerate(data["vocabulary"])},
                bag_weights=data["bag_weights"].astype(np.float64),
                flag_weights=data["flag_weights"].astype(np.float64),
                flag_bag_weights=data["flag_bag_weights"].astype(np.float64),
                flag_thresholds=data["flag_thresholds"].astype(np.float64),
            )
    except (OSError, KeyError, ValueError) as exc:
        raise TaxonomyError(f"cannot read the narrative model {MODEL_FILE}: {exc}") from exc


def reads(text: str | None) -> bool:
    """Whether the model reads this text (a narrative of :data:`MIN_WORDS` words or more)."""
    return bool(text) and len(_WORD.findall(text or "")) >= MIN_WORDS


def model_score(text: str | None) -> float | None:
    """Return the model's probability that ``text`` is sensitive (None: too short)."""
    if not reads(text):
        return None
    return float(model().probabilities([text or ""])[0])


def model_sensitivity(text: str | None) -> frozenset[Sensitivity]:
    """Return the flags the model gives ``text`` (none below its threshold or too short).

    Examples
    --------
    >>> sorted(model_sensitivity("He fondled a woman's leg on the late bus."))
    [<Sensitivity.SEXUAL_OFFENCE: 'sexual_offence'>]
    >>> model_sensitivity("Bicycle taken from the rack outside the library.")
    frozenset()
    """
    if not reads(text):
        return frozenset()
    m = model()
    read = reading(text or "")
    vector = embed([read]).astype(np.float64)
    words = bag(read)
    if float(m._probabilities(vector, [words])[0]) < m.threshold:
        return frozenset()
    return m.flags_for(vector[0], words)


# --- fitting ------------------------------------------------------------------------


def fit_logistic(
    x: FloatArray | sparse.csr_matrix, y: NDArray[np.bool_], *, c: float = 10.0
) -> FloatArray:
    """Fit a class-balanced, L2-penalised logistic regression; return weights, bias last.

    ``c`` is the inverse penalty, as scikit-learn's ``C``: the loss is
    ``0.5 * |w|^2 + c * sum(weight_i * logloss_i)`` with balanced class weights.
    """
    n = len(y)
    pos = max(int(y.sum()), 1)
    neg = max(n - pos, 1)
    sample = np.where(y, n / (2 * pos), n / (2 * neg))
    xb = sparse.hstack([sparse.csr_matrix(x), np.ones((n, 1))]).tocsr()
    t = y.astype(np.float64)

    def loss(w: FloatArray) -> tuple[float, FloatArray]:
        z = xb @ w
        p = _sigmoid(z)
        ll = np.logaddexp(0.0, z) - t * z
        grad = xb.T @ (sample * (p - t))
        reg = w.copy()
        reg[-1] = 0.0
        return float(0.5 * reg @ reg + c * sample @ ll), reg + c * grad

    # Imported here: only refitting needs it, and it costs every process ~1 s to load.
    from scipy.optimize import minimize

    res = minimize(loss, np.zeros(xb.shape[1]), jac=True, method="L-BFGS-B")
    return np.asarray(res.x, dtype=np.float64)


def batches(ids: Sequence[str]) -> list[str]:
    """Return each row's writing batch: the letters its id starts with (``t001``: ``t``)."""
    out = []
    for rid in ids:
        m = _BATCH.match(rid.lower())
        out.append(m.group() if m else rid)
    return out


def _vocabulary(bags: Sequence[frozenset[str]]) -> dict[str, int]:
    return {term: i for i, term in enumerate(sorted(set().union(*bags)))}


def out_of_fold(
    x: FloatArray,
    bags: Sequence[frozenset[str]],
    y: NDArray[np.bool_],
    groups: Sequence[str],
    *,
    c: float,
    c_bag: float,
) -> FloatArray:
    """Predict each writing batch with models fitted on the other batches."""
    p = np.zeros(len(y))
    g = np.asarray(groups)
    for batch in sorted(set(groups)):
        held = g == batch
        w = fit_logistic(x[~held], y[~held], c=c)
        by_meaning = _sigmoid(x[held] @ w[:-1] + w[-1])
        vocab = _vocabulary([b for b, h in zip(bags, held, strict=True) if not h])
        words = _bag_matrix(bags, vocab)
        wb = fit_logistic(words[~held], y[~held], c=c_bag)
        by_words = _sigmoid(words[held] @ wb[:-1] + wb[-1])
        p[held] = (by_meaning + by_words) / 2
    return p


def train(
    texts: Sequence[str],
    labels: Sequence[frozenset[Sensitivity]],
    ids: Sequence[str],
    *,
    version: str,
    target_recall: float = 0.97,
    c: float = 10.0,
    c_bag: float = 3.0,
) -> NarrativeModel:
    """Fit the model on labelled narratives.

    The threshold is the highest one at which the out-of-fold probabilities (each
    writing batch scored by a model fitted without it) reach ``target_recall`` on the
    sensitive narratives: an estimate of recall on text written later.
    """
    read = [reading(t) for t in texts]
    x = embed(read).astype(np.float64)
    bags = [bag(t) for t in read]
    y = np.array([bool(lab) for lab in labels])
    oof = out_of_fold(x, bags, y, batches(ids), c=c, c_bag=c_bag)
    ranked = np.sort(oof[y])
    threshold = float(ranked[int(np.floor((1 - target_recall) * len(ranked)))])
    any_w = fit_logistic(x, y, c=c)
    vocab = _vocabulary(bags)
    bag_w = fit_logistic(_bag_matrix(bags, vocab), y, c=c_bag)
    sens = x[y]
    sens_words = _bag_matrix([b for b, s in zip(bags, y, strict=True) if s], vocab)
    flag_w, flag_bw, flag_t = [], [], []
    for flag in FLAGS:
        fy = np.array([flag in lab for lab, s in zip(labels, y, strict=True) if s])
        if fy.any():
            flag_w.append(fit_logistic(sens, fy, c=c))
            flag_bw.append(fit_logistic(sens_words, fy, c=c_bag))
        else:
            flag_w.append(np.full(x.shape[1] + 1, -30.0))
            flag_bw.append(np.full(len(vocab) + 1, -30.0))
        flag_t.append(0.5)
    return NarrativeModel(
        version,
        threshold,
        any_w,
        vocab,
        bag_w,
        np.array(flag_w),
        np.array(flag_bw),
        np.array(flag_t, dtype=np.float64),
    )


def save(m: NarrativeModel, path: str | Path) -> None:
    """Write a model to an ``.npz`` file."""
    np.savez_compressed(
        path,
        version=np.array(m.version),
        threshold=np.array(m.threshold),
        any_weights=m.any_weights.astype(np.float32),
        vocabulary=np.array(sorted(m.vocabulary, key=m.vocabulary.__getitem__)),
        bag_weights=m.bag_weights.astype(np.float32),
        flag_weights=m.flag_weights.astype(np.float32),
        flag_bag_weights=m.flag_bag_weights.astype(np.float32),
        flag_thresholds=m.flag_thresholds,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Refit the shipped model on the ``tune`` split of the shipped labelled set."""
    from crossbeat.taxonomy.sensitivity import rules_version
    from crossbeat.taxonomy.sensitivity_accuracy import load_labelled

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--out", default=str(MODEL_FILE), help="Where to write the model.")
    args = parser.parse_args(argv)
    rows = [r for r in load_labelled() if r.split == "tune"]
    m = train(
        [r.text for r in rows],
        [r.labels for r in rows],
        [r.id for r in rows],
        version=rules_version(check_model=False),
    )
    save(m, args.out)
    print(f"fitted on {len(rows)} narratives; threshold {m.threshold:.3f}; wrote {args.out}")  # noqa: T201 - a script's output


if __name__ == "__main__":
    main()
