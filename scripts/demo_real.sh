#!/usr/bin/env bash
# A real trained model, mapped: SmolLM2-135M-Instruct (installed by scripts/build_llama_server.sh, with
# the project's llama-server) is served on 127.0.0.1, runner.py runs configs/real-demo.yaml against it,
# evaluate.py builds the PointsDB and prints the ReasonScore table, and each task's points are listed
# from the easiest up, with accuracy, invalid and truncation rates: where the model holds and where it
# breaks. About 5 minutes on two cores. Re-running is free: the run is complete and every answer cached.
#
#   bash scripts/demo_real.sh [OUTPUT_DIR]      (default: results/real-demo; relative to the repository)
#
# Environment: PYTHON (default: python), REASONSCAPE_DEMO_CONFIG (default: configs/real-demo.yaml; the
# tests use a smaller one), REASONSCAPE_SMOLLM2_GGUF (another copy of the model file).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/real-demo}
py=${PYTHON:-python}
config=${REASONSCAPE_DEMO_CONFIG:-configs/real-demo.yaml}
model=SmolLM2-135M-Instruct
mkdir -p "$out"
url_file="$out/.server-url"
rm -f "$url_file"

# 1. Serve the model. A background helper owns the server (LlamaServer: free port, health check, log
#    file); it stops the server when this script ends, however it ends (the trap).
"$py" - "$url_file" "$out" <<'EOF' &
import os
import signal
import sys

from reasonscape.testing.llamacpp import LlamaServerError, smollm2_server


def leave(signum: int, frame: object) -> None:
    raise SystemExit(0)


# Handlers, not a blocked signal mask: a mask would be inherited by llama-server, which would then
# ignore SIGTERM. A signal that lands while the server starts still stops it (LlamaServer's atexit).
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, leave)
try:
    server = smollm2_server(log_dir=sys.argv[2]).start()
except LlamaServerError as exc:
    sys.exit(f"error: {str(exc).splitlines()[0]}")
try:
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(server.base_url)
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    print(f"demo_real: serving {server.model_path.name} at {server.base_url} ({server.threads} thread(s), "
          f"{server.n_parallel} slots; log {server.log_path})", file=sys.stderr)
    while True:
        signal.pause()
finally:
    server.stop()
EOF
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; rm -f "$url_file"' EXIT
for _ in $(seq 1 1200); do
  [[ -s "$url_file" ]] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "demo_real: the model server did not start" >&2; exit 1; }
  sleep 0.1
done
[[ -s "$url_file" ]] || { echo "demo_real: the model server did not start within 120 s" >&2; exit 1; }
url=$(cat "$url_file")

# 2. Execute: one round of 16 tests at each of 16 points, 4 requests in flight (the server's 4 slots).
start=$(date +%s)
folder=$("$py" runner.py --config "$config" --template templates/zeroshot-nosys.json \
  --sampler samplers/greedy-128.json --model "$model" --apibase "$url" \
  --output "$out" --cache "$out/cache" --parallel 4)
echo "demo_real: runner finished in $(( $(date +%s) - start )) s: $folder" >&2

# 3. Evaluate: the PointsDB, and its ReasonScore table (stdout).
echo
echo "## ReasonScore"
echo
"$py" evaluate.py --interview "$folder/result-steps.ndjson" --db "$out/pointsdb.db" --quiet

# 4. Where it breaks: per task, each point from the easiest up (only the params that vary are shown).
"$py" - "$out/pointsdb.db" <<'EOF'
import sys

from reasonscape.analysis.dimensions import natural_key
from reasonscape.pointsdb import PointsDB, add_estimates

HOLDS = 0.5  # a point "holds" when its guess-corrected accuracy (C_P centre) is at least this

with PointsDB(sys.argv[1]) as db:
    frame = add_estimates(db.query(), modes=["C_P"])


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


print("\n## Per task (accuracy = correct / tests; truncated answers count as wrong)\n")
print("| task | tests | accuracy | C_P (guess-corrected) | invalid | truncated |")
print("|---|---:|---:|---:|---:|---:|")
for task, g in frame.groupby("base_task", sort=True):
    n = int(g["n"].sum())
    one = add_estimates(g[["n", "correct", "truncated", "guess", "guess_truncated"]].sum().to_frame().T, ["C_P"])
    print(f"| {task} | {n} | {pct(g['correct'].sum() / n)} | {pct(one['C_P_center'].iloc[0])} "
          f"± {pct(one['C_P_margin'].iloc[0])} | {pct(g['invalid'].sum() / n)} | {pct(g['truncated'].sum() / n)} |")

print(f"\n## Where it breaks (holds: C_P centre >= {pct(HOLDS)})")
for task, g in frame.groupby("base_task", sort=True):
    varying = sorted(k for k in g["params"].iloc[0] if len({str(p.get(k)) for p in g["params"]}) > 1)
    g = g.assign(_key=[tuple(natural_key(p.get(k)) for k in varying) for p in g["params"]]).sort_values("_key")
    label = [", ".join(f"{k}={p.get(k)}" for k in varying) or "(its only point)" for p in g["params"]]
    print(f"\n### {task}\n")
    print("| point | tests | accuracy | C_P | invalid | truncated | |")
    print("|---|---:|---:|---:|---:|---:|---|")
    held = []
    for name, r in zip(label, g.itertuples(index=False), strict=True):
        holds = r.C_P_center >= HOLDS
        held += [name] if holds else []
        print(f"| {name} | {r.n} | {pct(r.correct / r.n)} | {pct(r.C_P_center)} ± {pct(r.C_P_margin)} | "
              f"{pct(r.invalid / r.n)} | {pct(r.truncated / r.n)} | {'holds' if holds else 'breaks'} |")
    print(f"\n{task}: holds at {'; '.join(held)}; breaks at the other {len(g) - len(held)} point(s)" if held
          else f"\n{task}: breaks everywhere, the easiest point included")
EOF
echo >&2
echo "demo_real: results in $folder, PointsDB $out/pointsdb.db; total $(( $(date +%s) - start )) s" >&2
