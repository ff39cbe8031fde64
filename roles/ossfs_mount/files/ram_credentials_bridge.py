#!/usr/bin/env python3
"""Serve the instance's RAM role credentials in the shape s3fs reads, so s3fs needs no AccessKey.

s3fs (Debian's client for OSS's S3-compatible API) can take temporary credentials from a
container credentials endpoint (`-o iam_role=<role>,ecs`: it GETs
http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and renews them before they expire),
but not from ECS's metadata service, whose field names differ. This bridge listens on that
link-local address inside the instance, fetches the role's STS credentials from the metadata
service (token flow) on every request and renames the fields. Nothing is written to disk.

    ram_credentials_bridge.py ROLE [--metadata http://100.100.100.200] [--listen 169.254.170.2:80]
    ram_credentials_bridge.py ROLE --wait-ready 30   # exit 0 once the bridge serves the role
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN_TTL_SECONDS = 300


def fetch_role_credentials(metadata: str, role: str) -> dict[str, str]:
    token_request = urllib.request.Request(f"{metadata}/latest/api/token", method="PUT",
                                           headers={"X-aliyun-ecs-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)})
    with urllib.request.urlopen(token_request, timeout=5) as response:
        token = response.read().decode()
    request = urllib.request.Request(f"{metadata}/latest/meta-data/ram/security-credentials/{role}",
                                     headers={"X-aliyun-ecs-metadata-token": token})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def to_s3fs(credentials: dict[str, str], role: str) -> dict[str, str]:
    # s3fs counts the fields of a container credentials answer: five, RoleArn among them (unused).
    return {
        "RoleArn": f"acs:ram::role/{role}",
        "AccessKeyId": credentials["AccessKeyId"],
        "SecretAccessKey": credentials["AccessKeySecret"],
        "Token": credentials["SecurityToken"],
        "Expiration": credentials["Expiration"],
    }


def make_handler(metadata: str, role: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # no credentials in the journal
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/") != f"/ram/{role}":
                self.send_error(404, f"only /ram/{role} is served")
                return
            try:
                # s3fs reads the answer line by line, one field per line.
                body = json.dumps(to_s3fs(fetch_role_credentials(metadata, role), role), indent=2).encode()
            except (OSError, ValueError, KeyError) as err:
                print(f"ram-credentials-bridge: cannot get the credentials of role {role}: {err}",
                      file=sys.stderr, flush=True)
                self.send_error(502, "the metadata service did not give the role's credentials")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def wait_ready(listen: str, role: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{listen}/ram/{role}", timeout=2):
                return True
        except (OSError, urllib.error.URLError):
            time.sleep(0.3)
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role")
    parser.add_argument("--metadata", default="http://100.100.100.200")
    parser.add_argument("--listen", default="169.254.170.2:80")
    parser.add_argument("--wait-ready", type=float, metavar="SECONDS",
                        help="do not serve: wait until a running bridge serves the role's credentials")
    args = parser.parse_args()
    if args.wait_ready is not None:
        sys.exit(0 if wait_ready(args.listen, args.role, args.wait_ready) else 1)
    host, _, port = args.listen.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), make_handler(args.metadata.rstrip("/"), args.role))
    server.serve_forever()


if __name__ == "__main__":
    main()
