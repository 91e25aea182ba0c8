"""A webhook receiver for tests: a tiny HTTP server on loopback, run as its own process.

    python tests/webhook_receiver.py RECORD_FILE PORT_FILE [--fail-first N]

Each POST is appended to RECORD_FILE as one JSON line (path, headers, body as text, the
status answered). The first N requests are answered 500 (a receiver that fails and later
recovers); the rest 200. The port it listens on is written to PORT_FILE once it listens.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Lock


@dataclass
class Receiver:
    """A receiver process started by a test (:func:`start_receiver`)."""

    url: str
    record: Path
    process: subprocess.Popen

    def requests(self) -> list[dict]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines() if line]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def start_receiver(directory: Path, *, fail_first: int = 0, timeout: float = 20) -> Receiver:
    """Start a receiver process on a free loopback port; returns once it listens."""
    directory.mkdir(parents=True, exist_ok=True)
    record, port_file = directory / "requests.jsonl", directory / "port"
    command = [sys.executable, __file__, str(record), str(port_file), "--fail-first",
               str(fail_first)]  # fmt: skip
    process = subprocess.Popen(command)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_file.exists() and port_file.read_text():
            return Receiver(f"http://127.0.0.1:{port_file.read_text()}/hook", record, process)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("the webhook receiver did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("record", type=Path)
    parser.add_argument("port_file", type=Path)
    parser.add_argument("--fail-first", type=int, default=0)
    args = parser.parse_args()
    lock = Lock()
    seen = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                seen[0] += 1
                status = 500 if seen[0] <= args.fail_first else 200
                line = {
                    "path": self.path,
                    "headers": dict(self.headers.items()),
                    "body": body.decode(),
                    "status": status,
                }
                with args.record.open("a") as out:
                    out.write(json.dumps(line) + "\n")
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_: object) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    args.port_file.write_text(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
