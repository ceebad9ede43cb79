"""The endpoint label of a metered request: a bounded name for the path within its version.

The label is the first path segment below ``/{api}/{version}`` ("/items" for
``/shop/v1/items/42?x=1``, "/" for the version's root), cut to 64 characters. Every
label is learned per version and per worker, at most ``MAX_LABELS_PER_VERSION`` of
them, and only from a request the upstream answered below 400 (a 404 names a path that
does not exist, and a scanner must not fill the set with its guesses). A path whose
label is not (yet) learned is counted as "/other". So a version has at most
MAX_LABELS_PER_VERSION + 1 labels per worker, and in practice the API's few top-level
resources fleet-wide.
"""

from __future__ import annotations

MAX_LABEL_CHARS = 64
MAX_LABELS_PER_VERSION = 100
OTHER = "/other"


def first_segment(upstream_path: str) -> str:
    """``/items/42`` -> ``/items``; the path is the part below the version, from gateway/edge.py."""
    segment = upstream_path[1:].partition("/")[0] if upstream_path[:1] == "/" else upstream_path.partition("/")[0]
    return ("/" + segment)[:MAX_LABEL_CHARS]


class EndpointLabels:
    """One worker's learned labels, by API version id."""

    def __init__(self, max_per_version: int = MAX_LABELS_PER_VERSION) -> None:
        self.max_per_version = max_per_version
        self.known: dict[int, set[str]] = {}

    def label(self, version_id: int, upstream_path: str, status: int) -> str:
        """The label for a request; ``status`` 0 while the outcome is not known (learns nothing)."""
        label = first_segment(upstream_path)
        known = self.known.get(version_id)
        if known is None:
            known = self.known[version_id] = set()
        if label in known:
            return label
        if 0 < status < 400 and len(known) < self.max_per_version:
            known.add(label)
            return label
        return OTHER
