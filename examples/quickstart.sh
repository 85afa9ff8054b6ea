#!/usr/bin/env bash
# The newcomer's first command: on a fresh clone it installs the wasm target, builds shipper
# and the splunk-hec plugin, starts a local Splunk HEC receiver (`shipper receive hec`) and the
# SLS emulator generating
# sample audit/nginx logs, runs `shipper run --plugin splunk-hec` into the receiver for a few
# seconds with a progress line, shows a few delivered events, then stops everything cleanly
# (SIGINT: shipper finishes in-flight batches and commits its checkpoints).
#
#   bash examples/quickstart.sh [SECONDS]      (default 15)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-15}"
say() { printf '\n==> %s\n' "$*"; }

say "Rust target wasm32-wasip2 (plugins are WebAssembly components)"
rustup target add wasm32-wasip2

say "Build tools for ISA-L, the HEC gzip (nasm, autotools; installed with apt if missing)"
bash tests/support/build-deps.sh

say "Building shipper and the splunk-hec plugin (the first build takes a few minutes)"
# Every workspace binary in one build: its feature set matches `cargo test --workspace`, so
# after the tests this reuses their dependencies.
cargo build --quiet --workspace --bins
# Into the test suite's wasm build directory (tests/artifacts/build.rs, same settings): after
# `cargo test` this takes seconds instead of building the wasm dependencies a second time.
CARGO_PROFILE_RELEASE_DEBUG=false cargo build --quiet --release --target wasm32-wasip2 \
  --target-dir target/wasm-artifacts -p shipper-plugin-splunk-hec
plugin="$PWD/target/wasm-artifacts/wasm32-wasip2/release/shipper_plugin_splunk_hec.wasm"

work="$(mktemp -d -t shipper-quickstart.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# Waits for "listening on X" as the first line of $1 and prints X.
listening_on() {
  local file="$1" line=""
  for _ in $(seq 1 100); do
    line="$(head -n 1 "$file" 2>/dev/null || true)"
    [[ "$line" == "listening on "* ]] && { echo "${line#listening on }"; return 0; }
    sleep 0.1
  done
  echo "no 'listening on' line in $file; its log:" >&2
  cat "${file%.out}.log" >&2 || true
  return 1
}

say "Starting the SLS emulator (4 shards, generating 2000 sample logs/s)"
./target/debug/shipper emulator --listen 127.0.0.1:0 \
  --access-key-id quickstart --access-key-secret quickstart-secret \
  --logstore demo/audit:4 --generate 2000 --generate-into demo/audit \
  >"$work/emulator.out" 2>"$work/emulator.log" &
pids+=($!)
sls="$(listening_on "$work/emulator.out")"
echo "emulator at $sls"

token="00000000-1111-2222-3333-444444444444"
say "Starting a local Splunk HEC receiver: shipper receive hec"
./target/debug/shipper receive hec --listen 127.0.0.1:0 --token "$token" --print 2 --interval 2 \
  >"$work/receiver.out" 2>"$work/receiver.log" &
pids+=($!)
hec="$(listening_on "$work/receiver.out")"
echo "HEC receiver at $hec"

cat >"$work/shipper.toml" <<EOF
[source]
endpoint = "$sls"
project = "demo"
logstore = "audit"
consumer_group = "quickstart"
start = "begin"
heartbeat_interval = "2s"
timeout = "6s"

[plugin]
path = "$plugin"
[plugin.config]
sourcetype = "aliyun:sls"
index = "main"

[sink]
type = "hec"
endpoint = "$hec"

[dead_letter]
path = "$work/dead-letter.jsonl"
EOF

say "Running: shipper run --config $work/shipper.toml  (stops after ${seconds}s)"
SLS_AK_ID=quickstart SLS_AK_KEY=quickstart-secret SHIPPER_HEC_TOKEN="$token" \
  ./target/debug/shipper run --config "$work/shipper.toml" --progress always --progress-interval 3 \
  2> >(grep --line-buffered -E "progress:|ERROR|WARN|plugin loaded|joined|stopped" >&2) &
shipper=$!
sleep "$seconds"
kill -INT "$shipper"
status=0
wait "$shipper" || status=$?
sleep 2.5   # let the receiver print its final count

say "Two of the events the receiver got (what Splunk would index)"
sed -n '2,$p' "$work/receiver.out" | head -n 60
say "Receiver totals"
tail -n 1 "$work/receiver.log"
dead=$(wc -l <"$work/dead-letter.jsonl" 2>/dev/null || echo 0)
echo "dead-lettered logs: $dead"
echo "logs and config are in $work"
if [ "$status" -ne 0 ]; then
  echo "shipper exited with status $status" >&2
  exit "$status"
fi
# The demo only counts as working if events arrived and none was dead-lettered
# (.ci/run runs this script, so a broken first command fails CI).
received=$(tail -n 1 "$work/receiver.log" | grep -oE '[0-9]+ events received' | grep -oE '^[0-9]+' || echo 0)
if [ "${received:-0}" -eq 0 ] || [ "$dead" -ne 0 ]; then
  echo "quickstart failed: the receiver got ${received:-0} events, $dead were dead-lettered (logs in $work)" >&2
  exit 1
fi
say "Done. Next: README.md (run against real SLS), examples/shipper.toml, sdk/README.md (write a plugin)."
