"""``Perplexity`` (exp of the mean negative log-probability of the labels) and ``BleuScore``."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np

from msjax.nn.metrics.metric import Metric, check_type, rearrange_inputs

__all__ = ["Perplexity", "BleuScore"]


class Perplexity(Metric):
    """``exp(-mean log p[label])`` over all labels, ``p`` the (N, C) probabilities; ``ignore_label`` skipped.

    Returns a Python float.
    """

    def __init__(self, ignore_label=None):
        super().__init__()
        self.ignore_label = None if ignore_label is None else check_type("ignore_label", ignore_label, [int])
        self.clear()

    def clear(self):
        self._sum_metric = 0.0
        self._num_inst = 0

    @rearrange_inputs
    def update(self, *inputs):
        if len(inputs) != 2:
            raise ValueError(f"For 'Perplexity.update', it needs 2 inputs (predicted value, label), "
                             f"but got {len(inputs)}.")
        pred, label = self._convert_data(inputs[0]), self._convert_data(inputs[1])
        if label.size != pred.size / pred.shape[-1]:
            raise RuntimeError(f"For 'Perplexity.update', predicted value (input[0]) and label (input[1]) should "
                               f"have the same shape, but got predicted value shape {pred.shape}, label shape "
                               f"{label.shape}.")
        label = label.reshape((label.size,))
        index = np.expand_dims(label.astype(int), axis=1)
        pred = np.squeeze(pred[np.arange(index.shape[0])[:, None], index])
        num = 0
        if self.ignore_label is not None:
            ignore = (label == self.ignore_label).astype(pred.dtype)
            num -= np.sum(ignore)
            pred = pred * (1 - ignore) + ignore
        self._sum_metric += 0.0 - np.sum(np.log(np.maximum(1e-10, pred)))
        self._num_inst += num + pred.size

    def eval(self):
        """The perplexity; ``RuntimeError`` before any ``update`` (or when every label was ignored)."""
        if self._num_inst == 0:
            raise RuntimeError("The 'Perplexity' can not be calculated, because the number of samples is 0, please "
                               "check whether the update method has been called before calling eval method.")
        return math.exp(self._sum_metric / self._num_inst)


def _count_ngrams(tokens, n_gram):
    counter = Counter()
    for n in range(1, n_gram + 1):
        for j in range(len(tokens) - n + 1):
            counter[tuple(tokens[j:j + n])] += 1
    return counter


class BleuScore(Metric):
    """BLEU of candidate sentences against their references: ``update(candidates, references)`` with
    ``candidates`` a list of token lists and ``references`` a list (per candidate) of token lists.

    ``n_gram`` in 1..4; ``smooth`` adds one to every n-gram count. Any zero n-gram match gives 0.
    """

    def __init__(self, n_gram=4, smooth=False):
        super().__init__()
        self.n_gram = check_type("n_gram", n_gram, [int])
        if self.n_gram > 4 or self.n_gram < 1:
            raise ValueError(f"For 'BleuScore', the argument 'n_gram' should range from 1 to 4, but got {n_gram}.")
        self.smooth = check_type("smooth", smooth, [bool])
        self.clear()

    def clear(self):
        self._numerator = np.zeros(self.n_gram)
        self._denominator = np.zeros(self.n_gram)
        self._precision_scores = np.zeros(self.n_gram)
        self._c = 0.0
        self._r = 0.0
        self._trans_len = 0
        self._ref_len = 0
        self._is_update = False

    @rearrange_inputs
    def update(self, *inputs):
        if len(inputs) != 2:
            raise ValueError(f"For 'BleuScore.update', it needs 2 inputs (candidate_corpus, reference_corpus), "
                             f"but got {len(inputs)}.")
        candidates, references_corpus = inputs
        if len(candidates) != len(references_corpus):
            raise ValueError(f"For 'BleuScore.update', 'translate_corpus' (inputs[0]) and 'reference_corpus' "
                             f"(inputs[1]) should be equal in length, but got {len(candidates)}, "
                             f"{len(references_corpus)}")
        for candidate, references in zip(candidates, references_corpus):
            self._c += len(candidate)
            ref_lens = [len(ref) for ref in references]
            diffs = [abs(len(candidate) - n) for n in ref_lens]
            self._r += ref_lens[diffs.index(min(diffs))]
            translation = _count_ngrams(candidate, self.n_gram)
            reference = Counter()
            for ref in references:
                reference |= _count_ngrams(ref, self.n_gram)
            clipped = translation & reference
            for ngram, count in clipped.items():
                self._numerator[len(ngram) - 1] += count
            for ngram, count in translation.items():
                self._denominator[len(ngram) - 1] += count
        self._trans_len = np.array(self._c)
        self._ref_len = np.array(self._r)
        self._is_update = True

    def eval(self):
        """The BLEU score (a numpy float); ``RuntimeError`` before any ``update``."""
        if self._is_update is False:
            raise RuntimeError("Please call the 'update' method before calling 'eval' method.")
        if min(self._numerator) == 0.0:
            return np.array(0.0)
        if self.smooth:
            ones = np.ones(self.n_gram)
            precision = np.add(self._numerator, ones) / np.add(self._denominator, ones)
        else:
            precision = self._numerator / self._denominator
        geometric_mean = np.exp(np.sum(np.array([1.0 / self.n_gram] * self.n_gram) * np.log(precision)))
        brevity_penalty = np.array(1.0) if self._c > self._r else np.exp(1 - self._ref_len / self._trans_len)
        return brevity_penalty * geometric_mean
