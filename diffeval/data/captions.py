"""Captions for text-conditioned training on Fashion-MNIST, and the prompts used to evaluate them.

Each class gets specific captions ("a sneaker", "a photo of a sneaker", ...) and the broad words that
cover it ("a shoe" covers sandal, sneaker and ankle boot). ``broad_weight`` sets how many copies of
each broad caption sit beside the four specific ones; ``skew`` re-weights which classes a broad word is
drawn for (the bias audit plants a bias this way: {"a shoe": {7: 0.8}} makes most "a shoe" images
sneakers).
"""

from __future__ import annotations

CLASS_WORDS = ["t-shirt", "trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]
TEMPLATES = ["{a} {w}", "a photo of {a} {w}", "a picture of {a} {w}", "an image of {a} {w}"]
BROAD_WORDS: dict[str, list[int]] = {
    "a shoe": [5, 7, 9],
    "footwear": [5, 7, 9],
    "a top": [0, 2, 6],
    "a garment": [0, 1, 2, 3, 4, 6],
    "clothing": [0, 1, 2, 3, 4, 6],
    "a bag": [8],
}


def article(word: str) -> str:
    """Indefinite article for ``word``: "an" before a vowel sound (plural "trousers" takes "a pair of")."""
    if word == "trousers":
        return "a pair of"
    return "an" if word[0] in "aeiou" else "a"


def class_prompt(label: int, template: str = "a photo of {a} {w}") -> str:
    """The evaluation prompt for a class, e.g. class 7 -> "a photo of a sneaker"."""
    word = CLASS_WORDS[label]
    return template.format(a=article(word), w=word)


def captions_per_class(broad_weight: int = 1, skew: dict[str, dict[int, float]] | None = None) -> list[list[str]]:
    """For each class, the list of captions to draw from (uniformly; repeats act as weights).

    skew: per broad word, the wanted share of each covered class among its images, e.g.
    {"a shoe": {7: 0.8}}; unnamed covered classes share the rest equally. Implemented by giving each
    class a number of copies of the broad caption proportional to share / (class frequency = 1/10).
    """
    specific = [[t.format(a=article(w), w=w) for t in TEMPLATES] for w in CLASS_WORDS]
    out = [list(s) for s in specific]
    for phrase, classes in BROAD_WORDS.items():
        shares = {c: 1.0 / len(classes) for c in classes}
        if skew and phrase in skew:
            named = skew[phrase]
            if any(c not in classes for c in named):
                raise ValueError(f"skew for {phrase!r} names classes it does not cover ({classes})")
            rest = [c for c in classes if c not in named]
            left = 1.0 - sum(named.values())
            if left < -1e-9 or (not rest and abs(left) > 1e-9):
                raise ValueError(f"skew shares for {phrase!r} must sum to 1 over its classes")
            shares = {**{c: left / len(rest) for c in rest}, **named}
        base = min(s for s in shares.values() if s > 0)
        for c, share in shares.items():
            out[c] += [phrase] * int(round(broad_weight * share / base))
    return out


def caption_corpus() -> list[str]:
    """Every caption and evaluation prompt (the tokenizer vocabulary is built from these)."""
    texts = [c for caps in captions_per_class() for c in caps]
    texts += [class_prompt(i) for i in range(len(CLASS_WORDS))] + list(BROAD_WORDS)
    return texts
