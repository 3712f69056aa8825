#!/usr/bin/env bash
# Runs the cargo-fuzz targets of berth-registry, one after the other, each for a given time,
# and prints the executions and crashes of each.
#
#   registry/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET…]     (default: 60 s, every target)
#
# Toolchain: cargo-fuzz needs nightly-only rustc flags (-Zsanitizer, sanitizer coverage). This
# runs on the stable toolchain with RUSTC_BOOTSTRAP=1, which lets stable rustc take them; the
# stable toolchain ships the AddressSanitizer runtime, so the default sanitizer (address) works.
# SANITIZER=none skips it (about twice as fast; the targets are safe Rust, so ASan mostly
# watches the `unsafe` inside dependencies). Builds are optimised with debug assertions and
# overflow checks on (`-O -a`), so an arithmetic overflow in a parser is a crash.
#
# Environment: SANITIZER (address|none, default address), FUZZ_RUNS (stop a target after this
# many executions, even before its time is up; default: no limit), FUZZ_TIMEOUT (seconds one
# input may take before libFuzzer reports it, default 10), FUZZ_RSS_MB (default 2048).
# The seeds are corpus/<target>/ (committed; ./make_corpus.py writes them); what libFuzzer finds
# grows work/<target>/ (ignored by git), and a crash is saved in artifacts/<target>/ with the
# command that reproduces it in work/<target>.log. Exits 1 when any target crashed.
set -euo pipefail
cd "$(dirname "$0")"

secs=${1:-60}
shift || true
all=(route range digest reference client_reference manifest auth)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
san=${SANITIZER:-address}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz (a few minutes)…" >&2
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
flags=(-O -a -s "$san")

for t in "${targets[@]}"; do cargo fuzz build "${flags[@]}" "$t" >&2; done
rows=()
failed=0
for t in "${targets[@]}"; do
    mkdir -p "work/$t" "artifacts/$t"
    before=$(find "artifacts/$t" -type f | wc -l)
    echo "== $t: ${secs} s" >&2
    rc=0
    cargo fuzz run "${flags[@]}" "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -timeout="${FUZZ_TIMEOUT:-10}" \
        -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -runs="${FUZZ_RUNS:--1}" >"work/$t.log" 2>&1 || rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "work/$t.log" | grep -o '[0-9]*$' | tail -1)
    if [ -z "$execs" ]; then # killed before the final stats: the last status line's #N
        execs=$(grep -o '^#[0-9]*' "work/$t.log" | tail -1 | tr -d '#')
    fi
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "work/$t.log" | grep -o '[0-9]*$' | tail -1 || true)
    crashes=$(($(find "artifacts/$t" -type f | wc -l) - before))
    if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes="?(rc $rc)"; fi
    [ "$rc" -eq 0 ] || failed=1
    corpus=$(find "work/$t" -type f | wc -l)
    rows+=("$(printf '%-17s %14s %9s %8s %8s' "$t" "${execs:-0}" "${rate:-?}" "$corpus" "$crashes")")
    [ "$rc" -eq 0 ] || { echo "$t crashed; see work/$t.log and artifacts/$t/" >&2; tail -30 "work/$t.log" >&2; }
done

printf '%-17s %14s %9s %8s %8s\n' target executions exec/s corpus crashes
printf '%s\n' "${rows[@]}"
exit "$failed"
