"""Captions for text-conditioned training on Fashion-MNIST, and the prompts used to evaluate them.

Each class gets specific captions ("a sneaker", "a photo of a sneaker", ...) and the broad words that
cover it ("a shoe" covers sandal, sneaker and ankle boot). ``broad_weight`` sets how many copies of
each broad caption sit beside the four specific ones; ``skew`` re-weights which classes a broad word is
drawn for (the bias audit plants a bias this way: with {"a shoe": {7: 0.8}}, 80% of the images
captioned "a shoe" are sneakers).
"""

from __future__ import annotations

from fractions import Fraction

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

    Unskewed, a class's list holds its four specific captions and ``broad_weight`` copies of each broad
    word that covers it. ``skew``: per broad word, the wanted share of each covered class among the
    images captioned with that word, e.g. {"a shoe": {7: 0.8}} (unnamed covered classes share the rest
    equally). It is exact for class-balanced data (Fashion-MNIST): the word's total probability over
    its classes is kept, redistributed so that P(word | class c) is proportional to the share, and the
    class's other captions are repeated as needed to realise that probability with whole copies.
    ``caption_class_shares`` reads the resulting P(class | caption) back.
    """
    specific = [[t.format(a=article(w), w=w) for t in TEMPLATES] for w in CLASS_WORDS]
    out = [list(s) for s in specific]
    for phrase, classes in BROAD_WORDS.items():
        for c in classes:
            out[c] += [phrase] * broad_weight
    for phrase, named in (skew or {}).items():
        if phrase not in BROAD_WORDS:
            raise ValueError(f"skew names {phrase!r}, which is not a broad word ({', '.join(BROAD_WORDS)})")
        classes = BROAD_WORDS[phrase]
        if any(c not in classes for c in named) or any(v < 0 for v in named.values()):
            raise ValueError(f"skew for {phrase!r} names classes it does not cover ({classes}) or negative shares")
        rest = [c for c in classes if c not in named]
        left = 1.0 - sum(named.values())
        if left < -1e-9 or (not rest and abs(left) > 1e-9):
            raise ValueError(f"skew shares for {phrase!r} must sum to 1 over its classes")
        shares = {**{c: left / len(rest) for c in rest}, **named}
        p0 = {c: Fraction(out[c].count(phrase), len(out[c])) for c in classes}
        total = sum(p0.values())
        for c in classes:
            target = Fraction(shares[c]).limit_denominator(10_000) * total  # P(phrase | c) after skewing
            if target >= 1:
                raise ValueError(f"a share of {shares[c]} for class {c} under {phrase!r} needs more than every caption")
            others = [x for x in out[c] if x != phrase]
            ratio = target / (1 - target) * len(others)  # copies of phrase per copy of the other captions
            out[c] = others * ratio.denominator + [phrase] * ratio.numerator
    return out


def caption_class_shares(
    captions: list[list[str]], phrase: str, class_freq: list[float] | None = None
) -> dict[int, float]:
    """P(class | caption = phrase) under uniform draws from each class's caption list.

    class_freq: the classes' frequencies in the training images (default: equal, as in Fashion-MNIST).
    Returns {class: share} over the classes whose lists contain ``phrase``; shares sum to 1.
    """
    freq = class_freq or [1.0] * len(captions)
    weight = {c: freq[c] * caps.count(phrase) / len(caps) for c, caps in enumerate(captions) if phrase in caps}
    if not weight:
        raise ValueError(f"no class is captioned {phrase!r}")
    total = sum(weight.values())
    return {c: w / total for c, w in weight.items()}


def caption_corpus() -> list[str]:
    """Every caption and evaluation prompt (the tokenizer vocabulary is built from these)."""
    texts = [c for caps in captions_per_class() for c in caps]
    texts += [class_prompt(i) for i in range(len(CLASS_WORDS))] + list(BROAD_WORDS)
    return texts
