"""An S3 service for tests: moto's S3-compatible server on 127.0.0.1 (no other network), a fresh
bucket per test, and a listing independent of the code under test.

A test module imports the fixtures it uses (``s3_endpoint = s3_helpers.s3_endpoint``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

#: The ``[storage]`` keys every S3 test uses besides the endpoint and the bucket.
S3_CREDENTIALS = {"s3_region": "us-east-1", "s3_access_key_id": "testing",
                  "s3_secret_access_key": "testing"}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3-compatible server on 127.0.0.1 (an ephemeral port), for the session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A fresh bucket on the moto server."""
    import boto3

    name = f"media-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing"
                 ).create_bucket(Bucket=name)
    return name


def s3_objects(endpoint: str, bucket: str, prefix: str = "") -> list[str]:
    """Keys in the bucket (through boto3, independent of the code under test)."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))
