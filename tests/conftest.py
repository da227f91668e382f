"""Shared fixtures. The llama.cpp fixtures build (or reuse) a real llama-server with a tiny model."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from llamacpp_fixtures import llama_server, llama_server_binary, smollm2, tiny_gguf  # noqa: E402,F401
