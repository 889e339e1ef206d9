"""Index a source tree and search it from Python.

    python examples/index_and_search.py ~/src/myproject "where do we retry failed requests"

The first run builds the index (``.codeindex/`` inside the tree); later runs update only what changed.
Settings come from the usual layers (``.codeindex.toml``, ``CODEINDEX_*`` variables); pass more with
``Index(root, settings={...})``.
"""

from __future__ import annotations

import sys

from codeindex import Index


def main(root: str, query: str) -> int:
    with Index(root) as index:
        report = index.update()  # builds the index the first time, then re-indexes only what changed
        print(f"{report.kind}: {report.files_indexed} files indexed, {report.chunks_embedded} chunks embedded")
        for hit in index.search(query, k=5):
            # score orders one query's results: cosine similarity (vector), BM25 (lexical) or fused rank (hybrid)
            print(f"{hit.path}:{hit.start_line}-{hit.end_line}  {hit.symbol or '-'}  {hit.score:.3f}")
        print(f"why is README.md (not) indexed? {index.why('README.md').explanation}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
