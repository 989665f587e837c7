"""A real HTTP server for the download tests, and for trying downloads by hand: it serves a folder, honours
``Range: bytes=N-`` and misbehaves on purpose.

    python tests/offline/download_server.py ROOT [--port 8000] [--delay 0.02] [--mode normal]

Modes: ``normal``; ``drop-once`` (the first request for each file closes the connection after half the file, later
ones are normal); ``no-range`` (like drop-once, but Range is ignored: always 200 and the whole file);
``truncate`` (the announced Content-Length is right but no byte past the middle of the file is ever sent);
``status:CODE`` (every request answers CODE). ``--delay`` sleeps between 8 KiB chunks so that a transfer can be
interrupted by hand. Run as a script, it prints one JSON line per request (path, Range header, status).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CHUNK = 8192


class DownloadServer(ThreadingHTTPServer):
    """Serves ``root`` on 127.0.0.1; ``requests`` records every request (path, range, status)."""

    daemon_threads = True

    def __init__(self, root: Path, mode: str = "normal", delay: float = 0.0, port: int = 0, echo: bool = False):
        super().__init__(("127.0.0.1", port), _Handler)
        self.root, self.mode, self.delay, self.echo = Path(root).resolve(), mode, delay, echo
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"

    def start(self) -> DownloadServer:
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001 (a client that went away is expected)
        pass

    def record(self, entry: dict) -> int:
        """Store a request; the number of earlier requests for the same path."""
        with self.lock:
            earlier = sum(r["path"] == entry["path"] for r in self.requests)
            self.requests.append(entry)
        if self.echo:
            print(json.dumps(entry), flush=True)
        return earlier


class _Handler(BaseHTTPRequestHandler):
    server: DownloadServer

    def log_message(self, format: str, *args) -> None:  # noqa: A002, ANN002 (silence the default stderr log)
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        srv = self.server
        entry = {"path": self.path, "range": self.headers.get("Range")}
        file = (srv.root / self.path.lstrip("/")).resolve()
        data = file.read_bytes() if file.is_file() and file.is_relative_to(srv.root) else None
        if srv.mode.startswith("status:") or data is None:
            entry["status"] = int(srv.mode.split(":")[1]) if srv.mode.startswith("status:") else 404
            srv.record(entry)
            self.send_error(entry["status"])
            return
        size, start = len(data), 0
        match = re.fullmatch(r"bytes=(\d+)-", entry["range"] or "")
        if match and srv.mode != "no-range":
            start = int(match.group(1))
            if start >= size:
                entry["status"] = 416
                srv.record(entry)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        entry["status"] = 206 if start else 200
        earlier = srv.record(entry)
        self.send_response(entry["status"])
        if start:
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.send_header("Content-Length", str(size - start))
        self.send_header("Accept-Ranges", "none" if srv.mode == "no-range" else "bytes")
        self.end_headers()
        stop = size
        if srv.mode == "truncate" or (srv.mode in ("drop-once", "no-range") and earlier == 0):
            stop = max(start, size // 2)
        try:
            for offset in range(start, stop, CHUNK):
                self.wfile.write(data[offset:min(offset + CHUNK, stop)])
                self.wfile.flush()
                if srv.delay:
                    time.sleep(srv.delay)
        except (BrokenPipeError, ConnectionResetError):  # the client was killed or gave up
            pass
        self.close_connection = True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--mode", default="normal")
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args(argv)
    server = DownloadServer(args.root, args.mode, args.delay, args.port, echo=True)
    print(f"serving {args.root} at {server.url} (mode {args.mode}, delay {args.delay} s per {CHUNK} bytes)",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
