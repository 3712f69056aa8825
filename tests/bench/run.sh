#!/usr/bin/env bash
# Benchmark: container start-up. Wall time of `berth run --rm bb:1 true` beside
# `podman run --rm` on the same kind of network (none, the default bridge, a user network; CNI
# here), and beside `crun run` / `runc run` of the very bundle Berth
# wrote (its config.json, rootfs mounted once); plus a detached start + stop cycle for berth and
# podman. Same busybox rootfs everywhere, tmpfs storage, one warm-up round, then ROUNDS
# rounds, each in a fresh random order; prints medians and ratios, then the issue's targets.
#
#   tests/bench/run.sh                 # ROUNDS=20
#   BERTH_BIN=target/debug/berth tests/bench/run.sh   # skip the release build
#
# This host has hybrid cgroups and crun 1.8 refuses them, so crun runs as
# `unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified; exec crun …'`; that
# wrapper is timed alone as well and crun is reported raw and net of it. podman uses runc.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-20}
SCRATCH=${SCRATCH:-/dev/shm}
SETTLE=${SETTLE:-0.1}   # seconds of pause before each timed command

need=(podman runc crun busybox-static util-linux)
missing=()
for p in "${need[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if ((${#missing[@]})); then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
[ "$(id -u)" -eq 0 ] || { echo "run as root (namespaces, mounts, cgroups)" >&2; exit 1; }

if [ -n "${BERTH_BIN:-}" ]; then
  BERTH=$BERTH_BIN
else
  echo "building release binaries..." >&2
  cargo build --release --quiet -p berth-client --bins
  BERTH=target/release/berth
fi
BERTH=$(realpath "$BERTH")

W=$(mktemp -d "$SCRATCH/berth-rbench.XXXXXX")
CNI0_BEFORE=0; ip link show cni-podman0 >/dev/null 2>&1 && CNI0_BEFORE=1
ROOT=$W/berth-root
BUNDLE=""
b() { "$BERTH" --data-root "$ROOT" "$@"; }

# private podman configuration and storage (see MACHINE-NOTES.md and tests/src/lib.rs PodmanEnv)
mkdir -p "$W/podman/tmp"
cat > "$W/podman/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
runtime = "runc"
tmp_dir = "$W/podman/tmp"

[network]
network_config_dir = "$W/podman/networks"
CONF
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' "$W/podman/graph" "$W/podman/run" > "$W/podman/storage.conf"
printf 'unqualified-search-registries = []\n' > "$W/podman/registries.conf"
PM=(env CONTAINERS_CONF="$W/podman/containers.conf" CONTAINERS_STORAGE_CONF="$W/podman/storage.conf"
  CONTAINERS_REGISTRIES_CONF="$W/podman/registries.conf" TMPDIR="$W/podman/tmp" podman)
pm() { "${PM[@]}" "$@"; }

cleanup() {
  set +e
  [ -n "$BUNDLE" ] && umount "$BUNDLE/rootfs" 2>/dev/null
  if [ -d "$ROOT/containers" ]; then
    for d in "$ROOT"/containers/*/; do [ -d "$d" ] && b rm -f "$(basename "$d")" >/dev/null 2>&1; done
  fi
  b network rm benchnet >/dev/null 2>&1
  pm rm -af -t 0 >/dev/null 2>&1
  pm network rm -f benchnet >/dev/null 2>&1
  # podman's default bridge, unless it was there before
  ((CNI0_BEFORE)) || ip link del cni-podman0 >/dev/null 2>&1
  pm rmi -af >/dev/null 2>&1
  # whatever is still mounted under the scratch dir (bundle rootfs, podman's overlay), deepest first
  awk -v p="$W" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- images: one busybox rootfs tar, imported into berth and podman --------------------------
echo "preparing images and the bundle in $W..." >&2
mkdir -p "$W/rfs/bin" "$W/rfs/etc"
cp "$(command -v busybox)" "$W/rfs/bin/busybox"
chroot "$W/rfs" /bin/busybox --install -s /bin
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$W/rfs/etc/passwd"
printf 'root:x:0:\n' > "$W/rfs/etc/group"
tar -C "$W/rfs" -cf "$W/bb.tar" .
b import "$W/bb.tar" bb:1 >/dev/null
b network create benchnet >/dev/null
# Image copies write a blob-info cache to the machine-wide /var/lib/containers/cache, which no
# podman setting moves: import where /var/lib is a throw-away tmpfs.
unshare -m --propagation private sh -c 'mount -t tmpfs -o size=16m tmpfs /var/lib && exec "$@"' sh \
  "${PM[@]}" import -q "$W/bb.tar" localhost/bb:1 >/dev/null
# podman's own networks (CNI here): its default bridge `podman` and a user network alike.
mkdir -p "$W/podman/networks"
pm network create benchnet >/dev/null

# ---- the bundle: a container `berth create` made, its rootfs mounted once ----------------------
CID=$(b create bb:1 true)
BUNDLE=$ROOT/containers/$CID
lower=$(ls -d "$ROOT"/layers/sha256/*/fs)
[ "$(echo "$lower" | wc -l)" -eq 1 ] || { echo "expected one layer, got: $lower" >&2; exit 1; }
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$BUNDLE/upper,workdir=$BUNDLE/work" "$BUNDLE/rootfs"

# The same bundle without the seccomp section: crun compiles Docker's profile with libseccomp
# on every start, which the issue's ~12 ms crun figure does not include.
PLAIN=$W/bundle-plain
mkdir -p "$PLAIN"
python3 - "$BUNDLE" "$PLAIN" <<'PY'
import json, sys
bundle, plain = sys.argv[1], sys.argv[2]
c = json.load(open(f"{bundle}/config.json"))
c["linux"].pop("seccomp", None)
c["root"]["path"] = f"{bundle}/rootfs"
json.dump(c, open(f"{plain}/config.json", "w"))
PY

HYBRID=0
if awk '$2 == "/sys/fs/cgroup/unified" && $3 == "cgroup2" {f=1} END {exit !f}' /proc/self/mounts; then HYBRID=1; fi
crun_run() { # ID [BUNDLE]
  local bundle=${2:-$BUNDLE}
  if ((HYBRID)); then
    unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified && exec crun "$@"' sh \
      --root "$W/crun-state" run --bundle "$bundle" "$1"
  else
    crun --root "$W/crun-state" run --bundle "$bundle" "$1"
  fi
}
unshare_only() { unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified; true'; }
runc_run() { runc --root "$W/runc-state" run --bundle "$BUNDLE" "$1"; }
LOOP_CMD='trap "exit 0" TERM; sleep 1000 & wait'
berth_cycle() {
  local id
  id=$(b run -d bb:1 sh -c "$LOOP_CMD") && echo "$id" > "$W/last-cycle" && b stop -t 10 "$id" >/dev/null
}
podman_cycle() {
  local id
  id=$(pm run -d --network none localhost/bb:1 sh -c "$LOOP_CMD") && echo "$id" > "$W/last-cycle" &&
    pm stop -t 10 "$id" >/dev/null
}

# ---- measuring ---------------------------------------------------------------------------------
# Wall time in ms of one command (bash's $EPOCHREALTIME: no fork around the measurement);
# output discarded, a failure aborts the benchmark with the command's stderr.
declare -A LABEL
rows=(berth_default berth_usernet berth_none berth_unconfined podman_none podman_default podman_usernet crun_raw crun_plain unshare_umount runc berth_cycle podman_cycle)
LABEL[berth_default]="berth run --rm (default network)"
LABEL[berth_none]="berth run --rm --network none"
LABEL[berth_usernet]="berth run --rm --network benchnet (user)"
LABEL[berth_unconfined]="berth run --rm --network none, no seccomp"
LABEL[podman_none]="podman run --rm --network none (runc)"
LABEL[podman_default]="podman run --rm (default bridge, CNI)"
LABEL[podman_usernet]="podman run --rm --network benchnet (user)"
LABEL[crun_plain]="crun run bundle without seccomp (raw)"
LABEL[crun_plain_net]="crun without seccomp, net of unshare"
LABEL[crun_raw]="crun run bundle (unshare+umount+crun)"
LABEL[crun_net]="crun run bundle, net of unshare+umount"
LABEL[unshare_umount]="unshare -m + umount alone"
LABEL[runc]="runc run bundle"
LABEL[berth_cycle]="berth run -d + stop -t 10"
LABEL[podman_cycle]="podman run -d + stop -t 10 (runc)"
one() { # ROW ROUND
  local row=$1 i=$2 t0 t1
  t0=$EPOCHREALTIME
  case $row in
    berth_default) b run --rm bb:1 true ;;
    berth_none) b run --rm --network none bb:1 true ;;
    berth_usernet) b run --rm --network benchnet bb:1 true ;;
    berth_unconfined) b run --rm --network none --security-opt seccomp=unconfined bb:1 true ;;
    podman_none) pm run --rm --network none localhost/bb:1 true ;;
    podman_default) pm run --rm localhost/bb:1 true ;;
    podman_usernet) pm run --rm --network benchnet localhost/bb:1 true ;;
    crun_raw) crun_run "bench-crun-$i" ;;
    crun_plain) crun_run "bench-crunp-$i" "$PLAIN" ;;
    unshare_umount) unshare_only ;;
    runc) runc_run "bench-runc-$i" ;;
    berth_cycle) berth_cycle ;;
    podman_cycle) podman_cycle ;;
  esac >/dev/null 2>"$W/err" || { echo "$row failed:" >&2; cat "$W/err" >&2; exit 1; }
  t1=$EPOCHREALTIME
  # untimed: remove the stopped detached containers
  case $row in
    berth_cycle) b rm "$(cat "$W/last-cycle")" >/dev/null ;;
    podman_cycle) pm rm "$(cat "$W/last-cycle")" >/dev/null ;;
  esac
  [ "$i" = warm ] || awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f\n", (b-a)*1000}' >> "$W/t.$row"
}
median() { sort -g | awk '{a[NR]=$1} END{ if (NR==0) {print "nan"} else if (NR%2) {print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2} }'; }

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "warm-up, then $ROUNDS rounds, each in a random order..." >&2
for r in "${rows[@]}"; do one "$r" warm; done
for i in $(seq "$ROUNDS"); do
  # a fresh random order each round, so no tool always follows the same one (podman leaves
  # cleanup work running after it returns); a short pause lets such work settle
  for r in $(printf '%s\n' "${rows[@]}" | shuf); do sleep "$SETTLE"; one "$r" "$i"; done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

declare -A M
for r in "${rows[@]}"; do M[$r]=$(median < "$W/t.$r"); done
M[crun_net]=$(awk -v a="${M[crun_raw]}" -v b="${M[unshare_umount]}" 'BEGIN{printf "%.3f", a-b}')
M[crun_plain_net]=$(awk -v a="${M[crun_plain]}" -v b="${M[unshare_umount]}" 'BEGIN{printf "%.3f", a-b}')

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b==0) print "-"; else printf "%.2fx", a/b }'; }
printf '\n%-42s %10s %14s\n' "tool (median of $ROUNDS, wall ms)" "median ms" "vs berth"
for r in berth_default berth_usernet berth_none berth_unconfined podman_none podman_default podman_usernet crun_raw crun_net crun_plain crun_plain_net unshare_umount runc; do
  ref=${M[berth_none]}
  printf '%-42s %10.1f %14s\n' "${LABEL[$r]}" "${M[$r]}" "$(ratio "${M[$r]}" "$ref")"
done
for r in berth_cycle podman_cycle; do
  printf '%-42s %10.1f %14s\n' "${LABEL[$r]}" "${M[$r]}" "$(ratio "${M[$r]}" "${M[berth_cycle]}")"
done
echo "('vs berth' = tool median / berth median: berth run --network none for the run rows, the berth cycle for the cycle rows; >1 means berth is faster)"
echo "load average: before as above, after $LOAD_AFTER; crun via unshare: $([ "$HYBRID" = 1 ] && echo yes, hybrid cgroups || echo no)"

verdict() { awk -v x="$1" -v op="$2" -v t="$3" 'BEGIN{ ok = (op == ">=") ? (x >= t) : (x <= t); print ok ? "met" : "MISSED" }'; }
vp=$(awk -v a="${M[podman_none]}" -v b="${M[berth_none]}" 'BEGIN{printf "%.2f", a/b}')
vc=$(awk -v a="${M[berth_none]}" -v b="${M[crun_net]}" 'BEGIN{printf "%.2f", a/b}')
vcr=$(awk -v a="${M[berth_none]}" -v b="${M[crun_raw]}" 'BEGIN{printf "%.2f", a/b}')
echo
echo "target: berth >= 5x faster than podman (--network none): podman/berth = ${vp}x -> $(verdict "$vp" ">=" 5)"
vpd=$(awk -v a="${M[podman_default]}" -v b="${M[berth_default]}" 'BEGIN{printf "%.2f", a/b}')
echo "target: berth >= 5x faster than podman (default bridge): podman/berth = ${vpd}x -> $(verdict "$vpd" ">=" 5)"
vpu=$(awk -v a="${M[podman_usernet]}" -v b="${M[berth_usernet]}" 'BEGIN{printf "%.2f", a/b}')
echo "target: berth >= 5x faster than podman (user network): podman/berth = ${vpu}x -> $(verdict "$vpu" ">=" 5)"
echo "target: berth within 2x of crun: berth/crun = ${vc}x net of unshare -> $(verdict "$vc" "<=" 2), ${vcr}x raw -> $(verdict "$vcr" "<=" 2)"
# Like for like without seccomp on either side (crun's libseccomp compile dominates above).
vu=$(awk -v a="${M[berth_unconfined]}" -v b="${M[crun_plain_net]}" 'BEGIN{printf "%.2f", a/b}')
echo "  without seccomp on both sides: berth/crun = ${vu}x net of unshare -> $(verdict "$vu" "<=" 2)"
