#!/usr/bin/env bash
# Benchmark: garbage collection of REPOS repositories × (LAYERS+2) tiny blobs, half of them
# unreferenced (tests/bench/gc_data.py), on tmpfs:
#   offline   `berth-registry gc` vs the CNCF registry's `garbage-collect` on the same content:
#             wall time and peak RSS (GNU time), ROUNDS rounds interleaved, medians
#   online    manifest GET p50/p99 (tests/bench/gc_load.py, 4 keep-alive clients) against a
#             serving berth-registry, idle and while it collects (POST /_berth/gc); server RSS
#
#   tests/bench/gc.sh                          # REPOS=10000 LAYERS=8 ROUNDS=3, release build
#   BERTH_REGISTRY_BIN=target/debug/berth-registry REPOS=1000 tests/bench/gc.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
REPOS=${REPOS:-10000}; LAYERS=${LAYERS:-8}; ROUNDS=${ROUNDS:-3}; SCRATCH=${SCRATCH:-/dev/shm}
command -v docker-registry >/dev/null || { echo "docker-registry is missing (apt-get install docker-registry)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
if [ -n "${BERTH_REGISTRY_BIN:-}" ]; then BIN=$BERTH_REGISTRY_BIN; else
  cargo build --release --quiet -p berth-registry --bins; BIN=${CARGO_TARGET_DIR:-target}/release/berth-registry; fi
BIN=$(realpath "$BIN")
W=$(mktemp -d "$SCRATCH/berth-gcbench.XXXXXX")
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT

echo "generating $REPOS repositories, $((REPOS * (LAYERS + 2))) blobs (half unreferenced)..." >&2
python3 tests/bench/gc_data.py "$W/pristine-berth" "$W/pristine-cncf" "$REPOS" "$LAYERS"
cat > "$W/cncf.yml" <<YML
version: 0.1
storage:
  filesystem: {rootdirectory: $W/cncf}
  delete: {enabled: true}
http: {addr: 127.0.0.1:0}
YML
printf '[gc]\ninterval_secs = 0\ngrace_secs = 0\n' > "$W/berth.toml"

measure() { # label, command...: prints "label seconds maxrss_kib"
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$W/time" "$@" >/dev/null 2>"$W/err" || { cat "$W/err" >&2; exit 1; }
  echo "$label $(cat "$W/time")"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: > "$W/results"
for round in $(seq "$ROUNDS"); do
  for who in $(printf 'berth\ncncf\n' | shuf); do
    rm -rf "$W/berth" "$W/cncf"
    cp -a "$W/pristine-$who" "$W/$who"
    sync
    if [ "$who" = berth ]; then
      measure berth "$BIN" gc --config "$W/berth.toml" --data-dir "$W/berth" >> "$W/results"
    else
      measure cncf docker-registry garbage-collect "$W/cncf.yml" >> "$W/results"
    fi
    left=$(find "$W/$who" -name data -path '*blobs*' | wc -l)
    echo "round $round $who: $(tail -1 "$W/results") blobs left $left" >&2
  done
done
echo "== offline GC, $REPOS repositories, $((REPOS * (LAYERS + 2))) blobs, medians of $ROUNDS"
for who in berth cncf; do
  t=$(awk -v w=$who '$1==w {print $2}' "$W/results" | median)
  m=$(awk -v w=$who '$1==w {print $3}' "$W/results" | median)
  printf '%-6s wall %8.2f s   peak RSS %7.1f MiB\n' "$who" "$t" "$(echo "$m / 1024" | bc -l)"
done

echo "== online: manifest GET latency while berth-registry collects"
rm -rf "$W/berth"; cp -a "$W/pristine-berth" "$W/berth"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" serve --addr "127.0.0.1:$PORT" --data-dir "$W/berth" --config "$W/berth.toml" 2>"$W/server.log" &
SERVER=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/livez" >/dev/null && break; sleep 0.1; done
python3 tests/bench/gc_load.py "127.0.0.1:$PORT" "$REPOS" 3 4 "$W/none" >/dev/null  # warm-up
read -r n50 p50 p99 < <(python3 tests/bench/gc_load.py "127.0.0.1:$PORT" "$REPOS" 10 4 "$W/none")
echo "idle        requests $n50  p50 ${p50} ms  p99 ${p99} ms"
rm -f "$W/stop"
python3 tests/bench/gc_load.py "127.0.0.1:$PORT" "$REPOS" 600 4 "$W/stop" > "$W/load" &
LOAD=$!
sleep 0.3
curl -fs -X POST -H "x-berth-gc-token: $(sed -n 2p "$W/berth/_gc/serving")" "http://127.0.0.1:$PORT/_berth/gc" > "$W/report.json"
touch "$W/stop"
wait "$LOAD"
read -r gn g50 g99 < "$W/load"
echo "during GC   requests $gn  p50 ${g50} ms  p99 ${g99} ms   (p99 ratio $(echo "$g99 / $p99" | bc -l | cut -c1-5))"
python3 -c "import json; r=json.load(open('$W/report.json')); print(f\"server GC: {r['duration_ms']/1000:.2f} s, {len(r['blobs'])} blobs, {r['bytes_freed']} bytes freed\")"
echo "server peak RSS $(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' /proc/$SERVER/status)"
