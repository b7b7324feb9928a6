#!/usr/bin/env bash
# Short fuzz run of every service fuzz target (CI). Fails on any crash, panic, leak,
# timeout or oversized allocation.
#
#   service/fuzz/smoke.sh                      # 20 s per target
#   FUZZ_SECONDS=600 service/fuzz/smoke.sh     # longer
#   FUZZ_TARGETS="tx records" service/fuzz/smoke.sh
#
# Builds with the stable toolchain (RUSTC_BOOTSTRAP=1 allows cargo-fuzz's -Z flags),
# AddressSanitizer and debug assertions (so integer overflow panics). New corpus
# entries go to a temporary directory; the checked-in seeds are only read.
set -euo pipefail
cd "$(dirname "$0")"

export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

seconds="${FUZZ_SECONDS:-20}"
sanitizer="${FUZZ_SANITIZER:-address}"
targets=(${FUZZ_TARGETS:-jrpc_request records tx p2p_msg evidence mempool_admission})
# Inputs far above any real value: the largest valid seed is < 1 KiB.
declare -A max_len=([jrpc_request]=8192 [records]=4096 [tx]=8192 [p2p_msg]=8192 [evidence]=4096 [mempool_admission]=16384)
build=(--release --debug-assertions --sanitizer "$sanitizer")

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

start=$SECONDS
for t in "${targets[@]}"; do
  cargo fuzz build "${build[@]}" "$t"
done
echo "== fuzz build: $((SECONDS - start)) s"

for t in "${targets[@]}"; do
  echo "== fuzz $t for ${seconds} s"
  mkdir -p "$work/$t"
  corpora=("$work/$t" "corpus/$t")
  [ -d "regressions/$t" ] && corpora+=("regressions/$t")
  # -malloc_limit_mb: any single allocation above 256 MiB is a failure (decoders must
  # bound allocations by the input, which is at most a few KiB here).
  if ! cargo fuzz run "${build[@]}" "$t" "${corpora[@]}" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=256 \
      -max_len="${max_len[$t]:-4096}" -timeout=10 -print_final_stats=1; then
    echo "!! fuzz target $t failed; reproduce with:" >&2
    echo "   (cd service/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run ${build[*]} $t artifacts/$t/<file>)" >&2
    exit 1
  fi
done
echo "== fuzz smoke passed: $((SECONDS - start)) s in all"
