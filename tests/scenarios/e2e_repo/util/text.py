"""Small text helpers."""

import re
import unicodedata


def slugify(title: str) -> str:
    """Turn an article title into a lowercase URL slug with dashes."""
    normalized = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", normalized.lower())
    return "-".join(words)


def count_vowels(text: str) -> int:
    """Count the vowels in a piece of text."""
    return sum(1 for ch in text.lower() if ch in "aeiou")


class LruCache:
    """A least-recently-used cache that evicts the oldest entry when full."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: dict[str, object] = {}

    def get(self, key: str) -> object | None:
        if key not in self.items:
            return None
        value = self.items.pop(key)
        self.items[key] = value
        return value

    def put(self, key: str, value: object) -> None:
        self.items.pop(key, None)
        self.items[key] = value
        if len(self.items) > self.capacity:
            oldest = next(iter(self.items))
            del self.items[oldest]
