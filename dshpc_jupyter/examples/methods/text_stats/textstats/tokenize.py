"""Splitting text into words."""

import re

WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def words(text: str, min_length: int, case_sensitive: bool) -> list[str]:
    found = WORD.findall(text if case_sensitive else text.lower())
    return [w for w in found if len(w) >= min_length]
