"""The hand-written, asynchronous SDK; ``memsvc.sdk._sync`` is generated from it."""
