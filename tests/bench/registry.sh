#!/usr/bin/env bash
# Benchmark: berth-registry beside the CNCF registry (Debian's docker-registry, distribution 2.8)
# on loopback, same workloads in one run, interleaved, medians of ROUNDS. Storage is tmpfs so
# the virtual disk's noise does not decide the result. Prints one table with both figures and
# the ratio (>1 means berth is better).
#
#   tests/bench/registry.sh            # ROUNDS=3 WRK_SECONDS=10 by default
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
WRK_SECONDS=${WRK_SECONDS:-10}
SCRATCH=${SCRATCH:-/dev/shm}

need=(docker-registry skopeo wrk apache2-utils nginx-light curl)
missing=()
for p in "${need[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if ((${#missing[@]})); then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

echo "building release binaries..." >&2
cargo build --release --quiet -p berth-registry -p berth-tests --bins
BERTH=target/release/berth-registry

W=$(mktemp -d "$SCRATCH/berth-bench.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", (b-a)/1e9}'; }
median() { sort -g | awk '{a[NR]=$1} END{ if (NR==0) {print "nan"} else if (NR%2) {print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2} }'; }
wait_up() { for _ in $(seq 200); do curl -s -o /dev/null "http://$1/v2/" && return 0; sleep 0.05; done; echo "registry $1 did not start" >&2; exit 1; }
kib() { awk -v k="$1" '/^'"$1"':/{print $2}' "/proc/$2/status"; }

echo "building test images in $W..." >&2
target/release/berth-mkimage "$W/big" big 8 131072     # 8 x 128 MiB = 1 GiB
target/release/berth-mkimage "$W/tiny" tiny 40 1       # 40 x ~1.5 KiB layers
head -c 1024 /dev/urandom > "$W/small.bin"
head -c $((1024*1024*1024)) /dev/urandom > "$W/huge.bin"

BP=$(port); DP=$(port); NP=$(port)
BERTH_LOG=info "$BERTH" --addr "127.0.0.1:$BP" --data-dir "$W/berth-data" 2>"$W/berth.log" &
pids+=($!); BPID=$!
cat > "$W/dist.yml" <<YML
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $W/dist-data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$DP
YML
docker-registry serve "$W/dist.yml" >"$W/dist.log" 2>&1 &
pids+=($!); DPID=$!
mkdir -p "$W/www"; ln "$W/huge.bin" "$W/www/huge.bin"
cat > "$W/nginx.conf" <<NGX
daemon off; user root; worker_processes 2; pid $W/nginx.pid; error_log $W/nginx.err;
events { worker_connections 1024; }
http { access_log off; sendfile on; tcp_nopush on;
  server { listen 127.0.0.1:$NP; root $W/www; } }
NGX
nginx -c "$W/nginx.conf" &
pids+=($!)
wait_up "127.0.0.1:$BP"; wait_up "127.0.0.1:$DP"
declare -A ADDR=([berth]="127.0.0.1:$BP" [dist]="127.0.0.1:$DP")
declare -A PID=([berth]=$BPID [dist]=$DPID)
declare -A R   # results

push_blob() { # addr repo file [digest] -> prints digest
  local addr=$1 repo=$2 file=$3 d=${4:-} loc
  [ -n "$d" ] || d="sha256:$(sha256sum "$file" | cut -d' ' -f1)"
  loc=$(curl -s -D - -o /dev/null -X POST "http://$addr/v2/$repo/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
  case "$loc" in http*) ;; *) loc="http://$addr$loc" ;; esac
  case "$loc" in *\?*) loc="$loc&digest=$d" ;; *) loc="$loc?digest=$d" ;; esac
  curl -sf -X PUT -H "Content-Type: application/octet-stream" -T "$file" "$loc" -o /dev/null
  echo "$d"
}

for r in berth dist; do for _ in 1 2 3; do curl -s -o /dev/null "http://${ADDR[$r]}/v2/"; done; R[rest_$r]=$(kib VmRSS "${PID[$r]}"); done

skopeo_copy() { rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb; skopeo copy -q --src-tls-verify=false --dest-tls-verify=false "$@" >/dev/null; }

echo "push/pull rounds ($ROUNDS)..." >&2
for i in $(seq "$ROUNDS"); do
  order="berth dist"; ((i % 2 == 0)) && order="dist berth"
  for r in $order; do
    a=${ADDR[$r]}
    t0=$(now); skopeo_copy "oci:$W/big:big" "docker://$a/big$i:big"; t1=$(now)
    echo "$(secs "$t0" "$t1")" >> "$W/$r.bigpush"
    [ "$i" = 1 ] && R[peak_$r]=$(kib VmHWM "${PID[$r]}")
    rm -rf "$W/out"; t0=$(now); skopeo_copy "docker://$a/big$i:big" "oci:$W/out:big"; t1=$(now)
    echo "$(secs "$t0" "$t1")" >> "$W/$r.bigpull"; rm -rf "$W/out"
    t0=$(now); skopeo_copy "oci:$W/tiny:tiny" "docker://$a/tiny$i:tiny"; t1=$(now)
    echo "$(secs "$t0" "$t1")" >> "$W/$r.tinypush"
    t0=$(now); skopeo_copy "docker://$a/tiny$i:tiny" "oci:$W/out:tiny"; t1=$(now)
    echo "$(secs "$t0" "$t1")" >> "$W/$r.tinypull"; rm -rf "$W/out"
  done
done
BIG_MB=$(du -sm --apparent-size "$W/big/blobs" | cut -f1)
for r in berth dist; do
  for k in bigpush bigpull tinypush tinypull; do R[${k}_$r]=$(median < "$W/$r.$k"); done
done

echo "wrk (${WRK_SECONDS}s each, 2 threads, 32 connections)..." >&2
wrk_run() { # label url [args] -> sets R[label_rps], R[label_p99]
  local out; out=$(wrk -t2 -c32 -d"${WRK_SECONDS}s" --latency "${@:2}" 2>&1)
  R[${1}_rps]=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  R[${1}_p99]=$(awk '$1=="99%"{v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; printf "%.2f", v}' <<<"$out")
}
# wrk cannot do HEAD (it waits for the body Content-Length announces); ab -i can.
ab_head() { # label url
  local out; out=$(ab -q -k -i -c 32 -t "$WRK_SECONDS" -n 10000000 "$2" 2>&1)
  R[${1}_rps]=$(awk '/^Requests per second/{print $4}' <<<"$out")
  R[${1}_p99]=$(awk '$1=="99%"{printf "%.2f", $2}' <<<"$out")
}
for r in berth dist; do
  a=${ADDR[$r]}
  sd=$(push_blob "$a" small/blob "$W/small.bin")
  wrk_run "man_$r" -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$a/v2/big1/manifests/big"
  wrk_run "get_$r" "http://$a/v2/small/blob/blobs/$sd"
  ab_head "head_$r" "http://$a/v2/small/blob/blobs/$sd"
done

echo "1 GiB blob from and to curl (vs nginx sendfile)..." >&2
hd="sha256:$(sha256sum "$W/huge.bin" | cut -d' ' -f1)"   # outside the timed region
for i in 1 2 3; do
  for r in berth dist; do
    t0=$(now); push_blob "${ADDR[$r]}" "huge/blob$i" "$W/huge.bin" "$hd" >/dev/null; t1=$(now)
    echo "$(secs "$t0" "$t1")" >> "$W/$r.hugepush"
  done
done
for r in berth dist; do R[hugepush_$r]=$(median < "$W/$r.hugepush"); done
speed() { curl -s -o /dev/null -w '%{speed_download}\n' "$1"; }
for _ in 1 2 3; do
  speed "http://${ADDR[berth]}/v2/huge/blob1/blobs/$hd" >> "$W/berth.huge"
  speed "http://${ADDR[dist]}/v2/huge/blob1/blobs/$hd" >> "$W/dist.huge"
  speed "http://127.0.0.1:$NP/huge.bin" >> "$W/nginx.huge"
done
for r in berth dist nginx; do R[huge_$r]=$(median < "$W/$r.huge" | awk '{printf "%.0f", $1/1e6}'); done

ratio() { awk -v a="$1" -v b="$2" -v inv="${3:-0}" 'BEGIN{ if (a==0||b==0) {print "-"} else if (inv) printf "%.2fx", b/a; else printf "%.2fx", a/b }'; }
mbs() { awk -v mb="$BIG_MB" -v s="$1" 'BEGIN{printf "%.0f", mb/s}'; }

printf '\n%-36s %14s %14s %9s   %s\n' "workload" "berth" "distribution" "ratio" "target"
line() { printf '%-36s %14s %14s %9s   %s\n' "$@"; }
line "push 1 GiB 8 layers (skopeo), s" "${R[bigpush_berth]}" "${R[bigpush_dist]}" "$(ratio "${R[bigpush_berth]}" "${R[bigpush_dist]}" 1)" ">= 1.3x"
line "  MB/s" "$(mbs "${R[bigpush_berth]}")" "$(mbs "${R[bigpush_dist]}")" "" ""
line "pull 1 GiB 8 layers (skopeo), s" "${R[bigpull_berth]}" "${R[bigpull_dist]}" "$(ratio "${R[bigpull_berth]}" "${R[bigpull_dist]}" 1)" ">= 1.3x"
line "  MB/s" "$(mbs "${R[bigpull_berth]}")" "$(mbs "${R[bigpull_dist]}")" "" ""
line "push 40 tiny layers (skopeo), s" "${R[tinypush_berth]}" "${R[tinypush_dist]}" "$(ratio "${R[tinypush_berth]}" "${R[tinypush_dist]}" 1)" ""
line "pull 40 tiny layers (skopeo), s" "${R[tinypull_berth]}" "${R[tinypull_dist]}" "$(ratio "${R[tinypull_berth]}" "${R[tinypull_dist]}" 1)" ""
line "GET manifest, req/s" "${R[man_berth_rps]}" "${R[man_dist_rps]}" "$(ratio "${R[man_berth_rps]}" "${R[man_dist_rps]}")" ">= 20x"
line "GET manifest, p99 ms" "${R[man_berth_p99]}" "${R[man_dist_p99]}" "$(ratio "${R[man_berth_p99]}" "${R[man_dist_p99]}" 1)" "< 5 ms"
line "GET 1 KiB blob, req/s" "${R[get_berth_rps]}" "${R[get_dist_rps]}" "$(ratio "${R[get_berth_rps]}" "${R[get_dist_rps]}")" ">= 20x"
line "GET 1 KiB blob, p99 ms" "${R[get_berth_p99]}" "${R[get_dist_p99]}" "$(ratio "${R[get_berth_p99]}" "${R[get_dist_p99]}" 1)" "< 5 ms"
line "HEAD blob (ab -k), req/s" "${R[head_berth_rps]}" "${R[head_dist_rps]}" "$(ratio "${R[head_berth_rps]}" "${R[head_dist_rps]}")" ">= 20x"
line "HEAD blob (ab -k), p99 ms" "${R[head_berth_p99]}" "${R[head_dist_p99]}" "$(ratio "${R[head_berth_p99]}" "${R[head_dist_p99]}" 1)" "< 5 ms"
line "1 GiB blob from curl (PUT), s" "${R[hugepush_berth]}" "${R[hugepush_dist]}" "$(ratio "${R[hugepush_berth]}" "${R[hugepush_dist]}" 1)" "(no skopeo)"
line "1 GiB blob to curl, MB/s" "${R[huge_berth]}" "${R[huge_dist]}" "$(ratio "${R[huge_berth]}" "${R[huge_dist]}")" ">= nginx"
line "  nginx sendfile, MB/s" "${R[huge_nginx]}" "" "$(ratio "${R[huge_berth]}" "${R[huge_nginx]}")" "(berth/nginx)"
line "RSS at rest, MiB" "$((R[rest_berth]/1024))" "$((R[rest_dist]/1024))" "$(ratio "${R[rest_berth]}" "${R[rest_dist]}" 1)" "<= 10 MiB"
line "RSS peak (1 GiB push), MiB" "$((R[peak_berth]/1024))" "$((R[peak_dist]/1024))" "$(ratio "${R[peak_berth]}" "${R[peak_dist]}" 1)" "<= 64 MiB"
