"""A stand-in for the Obol Stack remote-signer REST API, signing with foundry's `cast`.

GET  /api/v1/keys                      -> {"keys": ["0x..."]}
POST /api/v1/sign/<address>/typed-data -> {"signature": "0x..."}   (EIP-712 JSON body)

Usage: python3 remote_signer.py PORT PRIVATE_KEY CAST_BINARY
Each signature is made by `cast wallet sign --data`, an EIP-712 implementation independent of
obol's. Every request is logged to stderr (without the key).
"""
import json
import subprocess
import sys
import tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, KEY, CAST = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ADDRESS = subprocess.run([CAST, "wallet", "address", "--private-key", KEY],
                         check=True, capture_output=True, text=True).stdout.strip()


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/api/v1/keys":
            self.reply(200, {"keys": [ADDRESS]})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        expected = f"/api/v1/sign/{ADDRESS}/typed-data".lower()
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path.lower() != expected:
            self.reply(404, {"error": f"unknown key or endpoint {self.path}"})
            return
        with tempfile.NamedTemporaryFile("wb", suffix=".json") as f:
            f.write(body)
            f.flush()
            res = subprocess.run([CAST, "wallet", "sign", "--private-key", KEY, "--data", "--from-file", f.name],
                                 capture_output=True, text=True)
        if res.returncode != 0:
            self.reply(400, {"error": res.stderr.strip()[:300]})
            return
        self.reply(200, {"signature": res.stdout.strip()})

    def log_message(self, fmt, *args):
        sys.stderr.write("remote-signer: " + (fmt % args) + "\n")


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
