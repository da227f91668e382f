"""probe.py's verbs: raw-trace forensics on chosen points (failure, truncation, fft).

Every verb reads a point's tests through `reasonscape.probe.locate` (the one place that knows where a
point's tests sit in the raw NDJSON) and returns a result the analyze renderer prints.
"""
