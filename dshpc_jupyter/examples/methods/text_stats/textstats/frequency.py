"""Counting words."""

from collections import Counter


def most_common(tokens: list[str], top: int) -> list[list[object]]:
    """The ``top`` most frequent tokens as [word, count] pairs, ties broken alphabetically."""
    counts = Counter(tokens)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [[word, count] for word, count in ranked[:top]]
