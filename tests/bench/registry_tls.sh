#!/usr/bin/env bash
# Benchmark: berth-registry vs CNCF distribution (Debian `docker-registry` 2.8) with TLS and auth
# on both, configured alike (the same certificate and the same bcrypt htpasswd file), in one run:
#   - manifest GET with Basic credentials (both) and with a Bearer token (berth's token server),
#     wrk 2 threads / 32 connections: req/s and p99;
#   - `docker login` latency (first, then repeated: berth caches verified credentials);
#   - skopeo push and pull of the 1 GiB 8-layer image over TLS with credentials.
# Then the same manifest GET without TLS or auth, to show nothing regressed.
#
#   tests/bench/registry_tls.sh           # ROUNDS=3 WRK_SECONDS=10; ~4 GiB of /dev/shm
#   BERTH_REGISTRY_BIN=target/release/berth-registry tests/bench/registry_tls.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
WRK_SECONDS=${WRK_SECONDS:-10}
SCRATCH=${SCRATCH:-/dev/shm}

need=(docker-registry skopeo wrk apache2-utils curl openssl hyperfine)
missing=()
for p in "${need[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if ((${#missing[@]})); then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if [ -n "${BERTH_REGISTRY_BIN:-}" ]; then
  BERTH=$BERTH_REGISTRY_BIN
else
  echo "building release binaries..." >&2
  cargo build --release --quiet -p berth-registry -p berth-tests --bins
  BERTH=target/release/berth-registry
fi
BERTH=$(realpath "$BERTH")
MKIMAGE=$(realpath "$(dirname "$BERTH")/berth-mkimage")

W=$(mktemp -d "$SCRATCH/berth-tlsbench.XXXXXX")
pids=()
DOCKER_CFG=$W/docker-config
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", (b-a)/1e9}'; }
median() { sort -g | awk '{a[NR]=$1} END{ if (NR==0) {print "nan"} else if (NR%2) {print a[(NR+1)/2]} else {print (a[NR/2]+a[NR/2+1])/2} }'; }
wait_up() { # url [curl args]
  for _ in $(seq 200); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$W/ca.crt" "${@:2}" "$1") || true
    case $code in 200|401) return 0 ;; esac; sleep 0.05
  done
  echo "registry $1 did not start" >&2; exit 1
}

echo "certificates, users and images in $W..." >&2
cd "$W"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=bench CA" \
  -keyout ca.key -out ca.crt 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
  -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf \
  -out server.crt 2>/dev/null
cd - >/dev/null
# One bcrypt file for both (cost 10, what `berth-registry user add` and `htpasswd -B` make).
htpasswd -Bbn bench bench-pass > "$W/htpasswd"
mkdir -p "$W/certs"; cp "$W/ca.crt" "$W/certs/ca.crt"
"$MKIMAGE" "$W/big" big 8 131072     # 8 x 128 MiB = 1 GiB
"$MKIMAGE" "$W/small" small 1 1

BP=$(port); TP=$(port); DP=$(port); PP=$(port)
BERTH_LOG=warn "$BERTH" serve --addr "127.0.0.1:$BP" --data-dir "$W/berth-data" \
  --tls-cert "$W/server.crt" --tls-key "$W/server.key" --htpasswd "$W/htpasswd" 2>"$W/berth.log" &
pids+=($!); declare -A PID; PID[berth]=$!
cat > "$W/token.toml" <<TOML
version = 1
[auth]
htpasswd = "$W/htpasswd"
[auth.token]
issuer = "bench"
service = "bench"
TOML
BERTH_LOG=warn "$BERTH" serve --addr "127.0.0.1:$TP" --data-dir "$W/berth-token-data" --config "$W/token.toml" \
  --tls-cert "$W/server.crt" --tls-key "$W/server.key" 2>"$W/berth-token.log" &
pids+=($!)
BERTH_LOG=warn "$BERTH" serve --addr "127.0.0.1:$PP" --data-dir "$W/berth-plain-data" 2>/dev/null &
pids+=($!)
cat > "$W/dist.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $W/dist-data
http:
  addr: 127.0.0.1:$DP
  tls:
    certificate: $W/server.crt
    key: $W/server.key
auth:
  htpasswd:
    realm: bench
    path: $W/htpasswd
YML
docker-registry serve "$W/dist.yml" >"$W/dist.log" 2>&1 &
pids+=($!); PID[dist]=$!
wait_up "https://127.0.0.1:$BP/v2/"; wait_up "https://127.0.0.1:$TP/v2/"; wait_up "https://127.0.0.1:$DP/v2/"
wait_up "http://127.0.0.1:$PP/v2/"
declare -A ADDR=([berth]="127.0.0.1:$BP" [token]="127.0.0.1:$TP" [dist]="127.0.0.1:$DP" [plain]="127.0.0.1:$PP")
declare -A R

skopeo_copy() { rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb; skopeo copy -q "$@" >/dev/null; }
# CPU seconds (user + system) a process has used so far.
cpu_of() { awk -v t="$(getconf CLK_TCK)" '{printf "%.2f\n", ($14 + $15) / t}' "/proc/$1/stat"; }
# skopeo_copy, appending skopeo's own CPU seconds to FILE.
skopeo_copy_cpu() { # FILE args…
  local f=$1; shift
  rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb
  /usr/bin/time -f '%U %S' -o "$f.t" skopeo copy -q "$@" >/dev/null
  awk '{printf "%.2f\n", $1 + $2}' "$f.t" >> "$f"
}
# Appends the CPU seconds PID used since START to FILE.
cpu_since() { awk -v a="$2" -v b="$(cpu_of "$1")" 'BEGIN{printf "%.2f\n", b-a}' >> "$3"; }
creds=(--dest-creds bench:bench-pass --dest-cert-dir "$W/certs")
for r in berth token dist; do skopeo_copy "${creds[@]}" "oci:$W/small:small" "docker://${ADDR[$r]}/small:small"; done
skopeo_copy --dest-tls-verify=false "oci:$W/small:small" "docker://${ADDR[plain]}/small:small"

# ---- manifest GET ------------------------------------------------------------------------------
wrk_run() { # label url [args]
  local out; out=$(wrk -t2 -c32 -d"${WRK_SECONDS}s" --latency "${@:2}" 2>&1)
  R[$1_rps]=$(awk '/Requests\/sec/{printf "%.0f", $2}' <<<"$out")
  R[$1_p99]=$(awk '$1=="99%"{print $2}' <<<"$out")
}
basic="Authorization: Basic $(printf 'bench:bench-pass' | base64 -w0)"
token=$(curl -s --cacert "$W/ca.crt" -u bench:bench-pass \
  "https://${ADDR[token]}/auth/token?service=bench&scope=repository:small:pull" |
  python3 -c 'import sys,json; print(json.load(sys.stdin)["token"])')
accept='Accept: application/vnd.oci.image.manifest.v1+json'
echo "wrk (${WRK_SECONDS}s each, 2 threads, 32 connections)..." >&2
for i in $(seq "$ROUNDS"); do
  wrk_run "basic_berth_$i" -H "$accept" -H "$basic" "https://${ADDR[berth]}/v2/small/manifests/small"
  wrk_run "basic_dist_$i" -H "$accept" -H "$basic" "https://${ADDR[dist]}/v2/small/manifests/small"
  wrk_run "bearer_berth_$i" -H "$accept" -H "Authorization: Bearer $token" "https://${ADDR[token]}/v2/small/manifests/small"
  wrk_run "plain_berth_$i" -H "$accept" "http://${ADDR[plain]}/v2/small/manifests/small"
done
for k in basic_berth basic_dist bearer_berth plain_berth; do
  R[${k}_rps]=$(for i in $(seq "$ROUNDS"); do echo "${R[${k}_${i}_rps]}"; done | median)
  R[${k}_p99]=$(for i in $(seq "$ROUNDS"); do echo "${R[${k}_${i}_p99]}"; done | sort -V | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
done

# ---- docker login ------------------------------------------------------------------------------
echo "docker login..." >&2
mkdir -p "$DOCKER_CFG"
login() { echo bench-pass | DOCKER_CONFIG=$DOCKER_CFG docker login "$1" -u bench --password-stdin >/dev/null 2>&1; }
# The docker CLI's own first start (binary and config dir cold) would be charged to whichever
# registry is logged into first.
DOCKER_CONFIG=$DOCKER_CFG docker version >/dev/null 2>&1 || true
for r in berth dist; do
  t0=$(now); login "${ADDR[$r]}"; t1=$(now); R[login_first_$r]=$(secs "$t0" "$t1")
  R[login_$r]=$(hyperfine -N --runs 10 --export-json "$W/login-$r.json" \
    "env DOCKER_CONFIG=$DOCKER_CFG sh -c 'echo bench-pass | docker login ${ADDR[$r]} -u bench --password-stdin'" >/dev/null 2>&1 &&
    python3 -c "import json; print('%.3f' % json.load(open('$W/login-$r.json'))['results'][0]['median'])")
done

# ---- 1 GiB over TLS --------------------------------------------------------------------------
echo "skopeo push/pull of 1 GiB over TLS ($ROUNDS rounds)..." >&2
for i in $(seq "$ROUNDS"); do
  order="berth dist"; ((i % 2 == 0)) && order="dist berth"
  for r in $order; do
    a=${ADDR[$r]}
    c0=$(cpu_of "${PID[$r]}")
    t0=$(now); skopeo_copy_cpu "$W/$r.push.client" "${creds[@]}" "oci:$W/big:big" "docker://$a/big$i:big"; t1=$(now)
    secs "$t0" "$t1" >> "$W/$r.push"; echo >> "$W/$r.push"; cpu_since "${PID[$r]}" "$c0" "$W/$r.push.server"
    rm -rf "$W/out"; c0=$(cpu_of "${PID[$r]}"); t0=$(now)
    skopeo_copy_cpu "$W/$r.pull.client" --src-creds bench:bench-pass --src-cert-dir "$W/certs" "docker://$a/big$i:big" "oci:$W/out:big"; t1=$(now)
    secs "$t0" "$t1" >> "$W/$r.pull"; echo >> "$W/$r.pull"; cpu_since "${PID[$r]}" "$c0" "$W/$r.pull.server"; rm -rf "$W/out"
  done
done
for r in berth dist; do
  for k in push pull; do
    R[${k}_$r]=$(median < "$W/$r.$k")
    R[${k}_server_$r]=$(median < "$W/$r.$k.server"); R[${k}_client_$r]=$(median < "$W/$r.$k.client")
  done
done

# ---- table -------------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a==0||b==0) print "-"; else printf "%.2fx", a/b }'; }
printf '\n%-44s %14s %14s %9s\n' "TLS + auth (medians of $ROUNDS)" "berth" "distribution" "ratio"
printf '%-44s %14s %14s %9s\n' "manifest GET, Basic: req/s" "${R[basic_berth_rps]}" "${R[basic_dist_rps]}" "$(ratio "${R[basic_berth_rps]}" "${R[basic_dist_rps]}")"
printf '%-44s %14s %14s\n' "manifest GET, Basic: p99" "${R[basic_berth_p99]}" "${R[basic_dist_p99]}"
printf '%-44s %14s %14s\n' "manifest GET, Bearer token: req/s" "${R[bearer_berth_rps]}" "-"
printf '%-44s %14s %14s\n' "manifest GET, Bearer token: p99" "${R[bearer_berth_p99]}" "-"
printf '%-44s %14s %14s\n' "docker login, first (s)" "${R[login_first_berth]}" "${R[login_first_dist]}"
printf '%-44s %14s %14s %9s\n' "docker login, repeated (median s)" "${R[login_berth]}" "${R[login_dist]}" "$(ratio "${R[login_dist]}" "${R[login_berth]}")"
printf '%-44s %14s %14s %9s\n' "skopeo push 1 GiB over TLS (s)" "${R[push_berth]}" "${R[push_dist]}" "$(ratio "${R[push_dist]}" "${R[push_berth]}")"
printf '%-44s %14s %14s %9s\n' "skopeo pull 1 GiB over TLS (s)" "${R[pull_berth]}" "${R[pull_dist]}" "$(ratio "${R[pull_dist]}" "${R[pull_berth]}")"
for k in push pull; do
  printf '%-44s %14s %14s %9s\n' "  $k: registry CPU s" "${R[${k}_server_berth]}" "${R[${k}_server_dist]}" "$(ratio "${R[${k}_server_dist]}" "${R[${k}_server_berth]}")"
  printf '%-44s %14s %14s\n' "  $k: skopeo's own CPU s" "${R[${k}_client_berth]}" "${R[${k}_client_dist]}"
done
# What bounds the 1 GiB figures on this machine, whatever the registry does:
# - push: skopeo copies an oci: layout's layers one at a time (that source does not allow
#   parallel reads), and its CPU over its wall time shows it on about one core; its own CPU
#   seconds are then the least wall time a push can take, so distribution's wall time over them
#   is the best ratio any registry could reach;
# - pull: layers come in parallel, so the floor is all CPU spent (skopeo's, plus the registry's)
#   over the cores: shown with berth's own registry CPU, and with none at all.
cores=$(nproc)
printf '%-44s %14s %14s\n' "  push: skopeo's busy cores (CPU / wall)" \
  "$(awk -v c="${R[push_client_berth]}" -v w="${R[push_berth]}" 'BEGIN{printf "%.2f", c/w}')" \
  "$(awk -v c="${R[push_client_dist]}" -v w="${R[push_dist]}" 'BEGIN{printf "%.2f", c/w}')"
printf '%-44s %14s %14s %9s\n' "  push: best possible ratio (skopeo CPU floor)" \
  "${R[push_client_berth]}" "${R[push_dist]}" "$(ratio "${R[push_dist]}" "${R[push_client_berth]}")"
pull_floor=$(awk -v a="${R[pull_client_berth]}" -v b="${R[pull_server_berth]}" -v n="$cores" 'BEGIN{printf "%.3f", (a+b)/n}')
pull_floor0=$(awk -v a="${R[pull_client_berth]}" -v n="$cores" 'BEGIN{printf "%.3f", a/n}')
printf '%-44s %14s %14s %9s\n' "  pull: best ratio (all CPU / $cores cores)" "$pull_floor" "${R[pull_dist]}" "$(ratio "${R[pull_dist]}" "$pull_floor")"
# A TLS registry must at least encrypt what it sends: openssl's AES-128-GCM speed on this machine.
enc_s=$(openssl speed -evp aes-128-gcm -bytes 16384 -seconds 2 2>/dev/null \
  | awk '/^AES-128-GCM/ {v=$2; sub(/k$/, "", v); printf "%.3f", 1073741824 / (v * 1000)}')
pull_floor_enc=$(awk -v a="${R[pull_client_berth]}" -v e="$enc_s" -v n="$cores" 'BEGIN{printf "%.3f", (a+e)/n}')
printf '%-44s %14s %14s %9s\n' "  pull: same, registry only encrypts (${enc_s}s)" "$pull_floor_enc" "${R[pull_dist]}" "$(ratio "${R[pull_dist]}" "$pull_floor_enc")"
printf '%-44s %14s %14s %9s\n' "  pull: same, with a registry using no CPU" "$pull_floor0" "${R[pull_dist]}" "$(ratio "${R[pull_dist]}" "$pull_floor0")"
printf '%-44s %14s\n' "no TLS, no auth: manifest GET req/s" "${R[plain_berth_rps]}"
printf '%-44s %14s\n' "no TLS, no auth: manifest GET p99" "${R[plain_berth_p99]}"
echo "(ratio: berth's advantage; req/s berth/distribution, times distribution/berth)"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
