"""Word-level tokenizer for prompts.

Lower-cases, splits into words (letters/digits, hyphenated words kept whole: "t-shirt"), and maps
each word to an id from a fixed vocabulary built from the training captions. Words outside the
vocabulary map to the documented ``<unk>`` token; ``unknown_words`` lists them so callers can warn or
refuse. Every prompt is framed as <bos> words... <eos>, padded with <pad> to ``max_len``; prompts
longer than that are cut (keeping <eos>).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import torch

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def words(text: str) -> list[str]:
    """The words of a prompt as the tokenizer sees them."""
    if not isinstance(text, str):
        raise TypeError(f"a prompt must be a str, got {type(text).__name__}")
    return _WORD.findall(text.lower())


class WordTokenizer:
    def __init__(self, vocab: Sequence[str], max_len: int = 16) -> None:
        if tuple(vocab[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary must start with the special tokens {SPECIALS}")
        if len(set(vocab)) != len(vocab):
            raise ValueError("the vocabulary has repeated words")
        if max_len < 3:
            raise ValueError("max_len must leave room for <bos>, a word and <eos>")
        self.vocab = list(vocab)
        self.max_len = max_len
        self.index = {w: i for i, w in enumerate(self.vocab)}

    @classmethod
    def from_texts(cls, texts: Iterable[str], max_len: int = 16) -> WordTokenizer:
        """Vocabulary = specials + every word of ``texts``, sorted (deterministic)."""
        found = sorted({w for t in texts for w in words(t)})
        return cls(list(SPECIALS) + found, max_len)

    def __len__(self) -> int:
        return len(self.vocab)

    def unknown_words(self, texts: Iterable[str]) -> list[str]:
        """Words of ``texts`` that are not in the vocabulary, sorted, without repeats."""
        return sorted({w for t in texts for w in words(t) if w not in self.index})

    def encode(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts -> (ids int64 (N, max_len), mask bool (N, max_len), True for real tokens)."""
        ids = torch.full((len(texts), self.max_len), self.index[PAD], dtype=torch.long)
        for row, text in enumerate(texts):
            seq = [self.index.get(w, self.index[UNK]) for w in words(text)][: self.max_len - 2]
            seq = [self.index[BOS], *seq, self.index[EOS]]
            ids[row, : len(seq)] = torch.tensor(seq)
        return ids, ids != self.index[PAD]
