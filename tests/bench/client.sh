#!/usr/bin/env bash
# Benchmark: `berth pull` beside `podman pull` (both end with unpacked layers) and `skopeo copy`
# to an OCI directory (no unpack), against the same local berth-registry, fresh store every run;
# and `berth push` beside `skopeo copy` for the 1 GiB image. Medians of ROUNDS, interleaved,
# tmpfs storage. Prints a table with figures and ratios.
#
#   tests/bench/client.sh              # ROUNDS=3
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
SCRATCH=${SCRATCH:-/dev/shm}

need=(skopeo podman runc busybox-static)
missing=()
for p in "${need[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if ((${#missing[@]})); then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

echo "building release binaries..." >&2
cargo build --release --quiet -p berth-registry -p berth-client -p berth-tests --bins
BERTH=target/release/berth

W=$(mktemp -d "$SCRATCH/berth-cbench.XXXXXX")
REG_PID=""
cleanup() { [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", (b-a)/1e9}'; }
median() { sort -g | awk '{a[NR]=$1} END{ if (NR%2) {print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2} }'; }

P=$(port); ADDR=127.0.0.1:$P
BERTH_LOG=warn target/release/berth-registry --addr "$ADDR" --data-dir "$W/registry" 2>"$W/registry.log" &
REG_PID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://$ADDR/v2/" && break; sleep 0.05; done

echo "building images..." >&2
target/release/berth-mkimage "$W/big" big 8 131072          # 1 GiB, 8 layers
target/release/berth-mkimage "$W/tiny" tiny 40 1            # 40 tiny layers
# ~50 MiB "distro-like" image: thousands of small files in 3 layers, gzip-compressed.
mkdir -p "$W/distro-src"
tar -C / -czf "$W/l1.tgz" usr/lib/python3.11 2>/dev/null
tar -C / -czf "$W/l2.tgz" usr/share/perl 2>/dev/null
tar -C / -czf "$W/l3.tgz" bin/busybox 2>/dev/null
python3 - "$W" <<'PY'
import gzip, hashlib, json, os, sys
w = sys.argv[1]; d = os.path.join(w, "distro"); os.makedirs(d + "/blobs/sha256", exist_ok=True)
def put(b):
    h = hashlib.sha256(b).hexdigest(); open(f"{d}/blobs/sha256/{h}", "wb").write(b); return "sha256:" + h, len(b)
layers, diffs = [], []
for n in ("l1", "l2", "l3"):
    gz = open(f"{w}/{n}.tgz", "rb").read()
    diffs.append("sha256:" + hashlib.sha256(gzip.decompress(gz)).hexdigest())
    dg, sz = put(gz); layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": dg, "size": sz})
cd, cs = put(json.dumps({"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": diffs}}).encode())
md, ms = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs}, "layers": layers}).encode())
open(f"{d}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
open(f"{d}/index.json", "w").write(json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "distro"}}]}))
PY
for img in big tiny distro; do
  skopeo copy -q --dest-tls-verify=false "oci:$W/$img:$img" "docker://$ADDR/bench/$img:$img" >/dev/null
done

# podman with private storage and config (see MACHINE-NOTES.md)
cat > "$W/containers.conf" <<CONF
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
CONF
podman_env() { env CONTAINERS_CONF="$W/containers.conf" CONTAINERS_STORAGE_CONF="$W/storage.conf" "$@"; }
reset_podman() {
  podman_env podman system reset -f >/dev/null 2>&1 || true
  rm -rf "$W/podman"
  printf '[storage]\ndriver = "overlay"\ngraphroot = "%s/podman/root"\nrunroot = "%s/podman/run"\n' "$W" "$W" > "$W/storage.conf"
}

declare -A R
for i in $(seq "$ROUNDS"); do
  for img in big distro tiny; do
    ref="$ADDR/bench/$img:$img"
    rm -rf "$W/berth-root"; sync
    t0=$(now); BERTH_NO_PROGRESS=1 "$BERTH" --data-root "$W/berth-root" pull -q "$ref" >/dev/null; t1=$(now)
    echo "$(secs "$t0" "$t1")" >> "$W/berth.$img"
    rm -rf "$W/berth-root"
    reset_podman
    t0=$(now); podman_env podman pull -q --tls-verify=false "$ref" >/dev/null 2>&1; t1=$(now)
    echo "$(secs "$t0" "$t1")" >> "$W/podman.$img"
    reset_podman
    rm -rf "$W/oci-out"; rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb
    t0=$(now); skopeo copy -q --src-tls-verify=false "docker://$ref" "oci:$W/oci-out:x" >/dev/null; t1=$(now)
    echo "$(secs "$t0" "$t1")" >> "$W/skopeo.$img"
    rm -rf "$W/oci-out"
  done
  # push of the 1 GiB image to an empty registry (nothing to skip or mount): berth from its
  # store, skopeo from the OCI directory.
  rm -rf "$W/berth-root"
  BERTH_NO_PROGRESS=1 "$BERTH" --data-root "$W/berth-root" pull -q "$ADDR/bench/big:big" >/dev/null
  for tool in berth skopeo; do
    PP=$(port)
    BERTH_LOG=warn target/release/berth-registry --addr "127.0.0.1:$PP" --data-dir "$W/push-$tool" 2>/dev/null &
    PUSH_PID=$!
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PP/v2/" && break; sleep 0.05; done
    rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb
    t0=$(now)
    if [ "$tool" = berth ]; then
      "$BERTH" --data-root "$W/berth-root" tag "$ADDR/bench/big:big" "127.0.0.1:$PP/p/big:big"
      BERTH_NO_PROGRESS=1 "$BERTH" --data-root "$W/berth-root" push -q "127.0.0.1:$PP/p/big:big" >/dev/null
    else
      skopeo copy -q --dest-tls-verify=false "oci:$W/big:big" "docker://127.0.0.1:$PP/p/big:big" >/dev/null
    fi
    t1=$(now)
    echo "$(secs "$t0" "$t1")" >> "$W/$tool.push"
    kill "$PUSH_PID"; wait "$PUSH_PID" 2>/dev/null || true
    rm -rf "$W/push-$tool"
  done
  rm -rf "$W/berth-root"
done
for t in berth podman skopeo; do for img in big distro tiny; do R[$t.$img]=$(median < "$W/$t.$img"); done; done
R[berth.push]=$(median < "$W/berth.push"); R[skopeo.push]=$(median < "$W/skopeo.push")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a==0) print "-"; else printf "%.2fx", b/a }'; }
printf '\n%-34s %9s %9s %9s %12s %12s\n' "workload (median s)" "berth" "podman" "skopeo" "vs podman" "vs skopeo"
for img in big distro tiny; do
  case $img in big) label="pull 1 GiB, 8 layers";; distro) label="pull ~50 MiB, many files";; tiny) label="pull 40 tiny layers";; esac
  printf '%-34s %9s %9s %9s %12s %12s\n' "$label" "${R[berth.$img]}" "${R[podman.$img]}" "${R[skopeo.$img]}" \
    "$(ratio "${R[berth.$img]}" "${R[podman.$img]}")" "$(ratio "${R[berth.$img]}" "${R[skopeo.$img]}")"
done
printf '%-34s %9s %9s %9s %12s %12s\n' "push 1 GiB, 8 layers" "${R[berth.push]}" "-" "${R[skopeo.push]}" "-" "$(ratio "${R[berth.push]}" "${R[skopeo.push]}")"
echo "targets: pull >= 3x faster than podman and within 1.5x of skopeo (ratio vs skopeo >= 0.67x); push >= 1.2x faster than skopeo" >&2
