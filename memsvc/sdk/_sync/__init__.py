"""The synchronous SDK, generated from ``memsvc.sdk._async`` (scripts/unasync_sdk.py)."""
