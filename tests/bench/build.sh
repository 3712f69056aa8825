#!/usr/bin/env bash
# Benchmark: `berth build` vs `buildah bud --layers` vs `DOCKER_BUILDKIT=0 docker build` on the
# same 10-step Dockerfile and context (busybox base loaded into each from one archive):
#   cold    every step rebuilt (--no-cache)
#   cached  every step from the cache
#   edit    one file of the context changed: the last COPY and RUN rebuilt
# Rounds interleaved in a fresh random order; prints medians and ratios to berth.
#
#   tests/bench/build.sh                               # ROUNDS=5, release build
#   BERTH_BIN=target/debug/berth ROUNDS=3 tests/bench/build.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-5}
SCRATCH=${SCRATCH:-/dev/shm}
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
command -v buildah >/dev/null || { echo "buildah is missing (apt-get install buildah)" >&2; exit 1; }
if [ -n "${BERTH_BIN:-}" ]; then BERTH=$BERTH_BIN; else
  cargo build --release --quiet -p berth-client --bins; BERTH=target/release/berth; fi
BERTH=$(realpath "$BERTH")

W=$(mktemp -d "$SCRATCH/berth-bbench.XXXXXX")
TAG=berthbench-$$
cleanup() {
  docker rmi -f "$TAG:base" "$TAG:out" >/dev/null 2>&1 || true
  buildah --root "$W/buildah" --runroot "$W/buildah-run" rmi -a -f >/dev/null 2>&1 || true
  umount -R "$W/buildah" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

mkdir -p "$W/rootfs/bin" "$W/rootfs/etc" "$W/ctx/big"
cp "$(command -v busybox)" "$W/rootfs/bin/busybox"
chroot "$W/rootfs" /bin/busybox --install -s /bin
echo 'root:x:0:0:root:/root:/bin/sh' > "$W/rootfs/etc/passwd"
tar -C "$W/rootfs" -cf "$W/rootfs.tar" .
b() { "$BERTH" --data-root "$W/berth" "$@"; }
b import "$W/rootfs.tar" "$TAG:base" >/dev/null
b save "$TAG:base" -o "$W/base.tar"
docker load -i "$W/base.tar" >/dev/null
BH=(buildah --root "$W/buildah" --runroot "$W/buildah-run" --storage-driver overlay)
"${BH[@]}" pull -q "docker-archive:$W/base.tar" >/dev/null
"${BH[@]}" tag "$(${BH[@]} images -q | head -1)" "$TAG:base"

for i in $(seq 1 200); do head -c 4096 /dev/urandom > "$W/ctx/big/f$i"; done
echo dep > "$W/ctx/dep.txt"; echo src > "$W/ctx/src.txt"
cat > "$W/ctx/Dockerfile" <<DF
FROM $TAG:base
ENV A=1
WORKDIR /app
COPY dep.txt ./
RUN cat dep.txt > dep.out
COPY big/ ./big/
RUN ls big | wc -l > count
COPY src.txt ./
RUN cat src.txt > src.out
CMD ["sh"]
DF

now() { date +%s%N; }
declare -A T
run_one() { # tool mode
  local tool=$1 mode=$2 nc=()
  [ "$mode" = cold ] && nc=(--no-cache)
  [ "$mode" = edit ] && echo "src $(now)" > "$W/ctx/src.txt"
  local t0; t0=$(now)
  case $tool in
    berth) b build -q "${nc[@]}" -t "$TAG:out" "$W/ctx" >/dev/null ;;
    buildah) "${BH[@]}" bud -q --runtime runc --layers "${nc[@]}" -t "$TAG:out" "$W/ctx" >/dev/null ;;
    docker) DOCKER_BUILDKIT=0 docker build -q "${nc[@]}" -t "$TAG:out" "$W/ctx" >/dev/null 2>&1 ;;
  esac
  T[$tool.$mode]+="$(( ($(now) - t0) / 1000000 )) "
}
for tool in berth buildah docker; do run_one $tool cold; run_one $tool cached; done  # warm-up
T=()
for r in $(seq 1 "$ROUNDS"); do
  for job in $(printf '%s\n' berth.cold berth.cached berth.edit buildah.cold buildah.cached buildah.edit docker.cold docker.cached docker.edit | shuf); do
    tool=${job%.*}; mode=${job#*.}
    [ "$mode" = cached ] && run_one "$tool" cached  # make sure the cache holds this context
    [ "$mode" = cached ] && T[$tool.$mode]=${T[$tool.$mode]% * }" "
    run_one "$tool" "$mode"
  done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-8s %10s %10s %10s   (ms, median of %s)\n' mode berth buildah docker "$ROUNDS"
for mode in cold cached edit; do
  bm=$(echo "${T[berth.$mode]}" | median); hm=$(echo "${T[buildah.$mode]}" | median); dm=$(echo "${T[docker.$mode]}" | median)
  printf '%-8s %10s %10s %10s   buildah/berth %.1fx  docker/berth %.1fx\n' "$mode" "$bm" "$hm" "$dm" \
    "$(echo "$hm / $bm" | bc -l)" "$(echo "$dm / $bm" | bc -l)"
done
echo "targets: cold >= 2x faster than buildah, cached <= 100 ms, edit >= 3x faster than buildah"
