"""What an operator sees of a running memsvc: metrics, structured logs, traces.

A leaf package (it imports nothing of memsvc but settings), so every layer above ``stores``
may record into it: :mod:`.context` (the request id and who is asking, carried into jobs),
:mod:`.logs` (one JSON object per line), :mod:`.metrics` (Prometheus families),
:mod:`.tracing` (OpenTelemetry spans, imported only when enabled).
"""
