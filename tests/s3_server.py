"""A real S3-speaking server for tests: moto in server mode on 127.0.0.1 (no patched clients).

The data.py CLI runs in a subprocess and reaches it through AWS_ENDPOINT_URL like any MinIO or Ceph.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

#: Dummy credentials moto accepts; tests also check they never reach stdout/stderr.
ENV = {"AWS_ACCESS_KEY_ID": "testing-key-id-123", "AWS_SECRET_ACCESS_KEY": "testing-secret-XYZ-987",
       "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def moto_s3(bucket: str = "reasonscape-test") -> Iterator[dict[str, str]]:
    """Start moto's server, create `bucket`; yields the env a client needs (endpoint + dummy credentials)."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        env = {**ENV, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
        # moto keeps its buckets in process-global state that outlives a server: start from nothing, so
        # a test never sees the objects an earlier test left (the order of tests must not matter).
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{env['AWS_ENDPOINT_URL']}/moto-api/reset", method="POST"),
                               timeout=10).close()
        boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                     aws_access_key_id=ENV["AWS_ACCESS_KEY_ID"],
                     aws_secret_access_key=ENV["AWS_SECRET_ACCESS_KEY"]).create_bucket(Bucket=bucket)
        yield env
    finally:
        server.stop()
