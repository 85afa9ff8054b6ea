#!/usr/bin/env bash
# Replays every committed corpus, then fuzzes each target for SECS seconds (default 15):
# what CI runs (docs/fuzzing.md). Needs cargo-fuzz; the one stable toolchain builds the
# sanitizer and coverage instrumentation with RUSTC_BOOTSTRAP=1 (no nightly).
#   bash tests/fuzz/run.sh [SECS] [TARGET...]
# FUZZ_TARGET_DIR moves the build (default tests/fuzz/target); new corpus entries go to
# $FUZZ_TARGET_DIR/corpus/<target>, never into the committed seeds. FUZZ_BUILD_FLAGS adds
# cargo-fuzz build flags: CI uses "--dev -s none" (no optimisation, no AddressSanitizer),
# which builds in a third of the time; panics, overflows and property failures still stop
# the run. The long runs of docs/fuzzing.md use the default (release, AddressSanitizer).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-15}
shift || true
export RUSTC_BOOTSTRAP=1
target_dir=${FUZZ_TARGET_DIR:-tests/fuzz/target}
read -r -a build_flags <<<"${FUZZ_BUILD_FLAGS:-}"
fuzz=(cargo fuzz run --fuzz-dir tests/fuzz --target-dir "$target_dir" "${build_flags[@]}")
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list --fuzz-dir tests/fuzz)

started=$(date +%s)
cargo fuzz build --fuzz-dir tests/fuzz --target-dir "$target_dir" "${build_flags[@]}"
echo "fuzz build: $(( $(date +%s) - started )) s"
for t in "${targets[@]}"; do
  scratch="$target_dir/corpus/$t"
  log="$target_dir/$t.log"
  mkdir -p "$scratch"
  # -runs=0 executes every committed input once (a regression run); then fuzz from them.
  if ! "${fuzz[@]}" "$t" "tests/fuzz/corpus/$t" -- -runs=0 >"$log" 2>&1 \
    || ! "${fuzz[@]}" "$t" "$scratch" "tests/fuzz/corpus/$t" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >>"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz target $t failed: its input is in tests/fuzz/artifacts/$t/" >&2
    exit 1
  fi
  echo "$t: $(grep -m1 '^stat::number_of_executed_units' "$log" | tr -s ' ' | cut -d' ' -f2) executions in ${secs} s"
done
echo "fuzzing: $(( $(date +%s) - started )) s for ${#targets[@]} targets"
