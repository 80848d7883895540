"""The pure layer: lifecycle rules and deciders (no I/O, no anyio, no onnxruntime)."""
