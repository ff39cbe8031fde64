"""Start a localcloud of the scenario's own (reachable over the podman bridge) with a bucket, or stop it.

    python localcloud_bucket.py up STATE_DIR     prints the mount settings as JSON
    python localcloud_bucket.py down STATE_DIR
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
from botocore.config import Config

from localcloud import cli

BUCKET = "molecule-ossfs-mount"


def bridge_gateway() -> str:
    inspect = subprocess.run(["podman", "network", "inspect", "podman"], capture_output=True, text=True)
    try:
        return json.loads(inspect.stdout)[0]["subnets"][0]["gateway"]
    except (ValueError, LookupError):
        return "10.88.0.1"


def up(state_dir: Path) -> dict[str, str]:
    cli.up(state_dir, "0.0.0.0", None, None, None, 0.2)
    env = {}
    for line in (state_dir / cli.ENV_FILE).read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value
    port = env["LOCALCLOUD_OSS_ENDPOINT"].rsplit(":", 1)[1]
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name=env["ALIBABA_CLOUD_REGION_ID"],
                      aws_access_key_id=env["ALIBABA_CLOUD_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
                      config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
    if BUCKET not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="uploaded-from-the-console.txt", Body=b"seen through the mount\n")
    return {"bucket": BUCKET, "url": f"http://{bridge_gateway()}:{port}",
            "access_key_id": env["ALIBABA_CLOUD_ACCESS_KEY_ID"],
            "access_key_secret": env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]}


def main() -> int:
    command, state_dir = sys.argv[1], Path(sys.argv[2])
    if command == "up":
        state_dir.mkdir(parents=True, exist_ok=True)
        print(json.dumps(up(state_dir)))
    else:
        cli.down(state_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
