"""A search API over plain ``http.server``: ``GET /search?q=...&k=5`` answers JSON.

    python examples/http_search.py ~/src/myproject 8000
    curl 'http://127.0.0.1:8000/search?q=retry+failed+requests&k=3'

One ``Index`` serves every request: its read connection, segments and model stay loaded between
queries, so a query costs milliseconds. The server is single-threaded on purpose (one query at a time
on the one connection); ``codeindex update`` in another process keeps working meanwhile, and the next
query sees its result. Errors (a bad ``k``, an unknown ``lang``) come back as 400 with the message.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

from codeindex import CodeIndexError, Index


def make_handler(index: Index) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path != "/search":
                return self._send(404, {"error": "try /search?q=..."})
            args = parse_qs(url.query)
            try:
                hits = index.search(args.get("q", [""])[0], k=int(args.get("k", ["10"])[0]),
                                    languages=args.get("lang", []), paths=args.get("path", []))
            except (CodeIndexError, ValueError) as exc:
                return self._send(400, {"error": str(exc)})
            self._send(200, {"results": [hit.as_dict() for hit in hits]})

        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # quiet: no line per request
            pass

    return Handler


def main(root: str, port: int) -> int:
    with Index(root) as index:
        if not index.exists():
            index.rebuild()
        server = HTTPServer(("127.0.0.1", port), make_handler(index))
        print(f"serving {index.root} on http://127.0.0.1:{server.server_port}/search?q=...", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
