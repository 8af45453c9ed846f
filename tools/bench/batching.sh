#!/usr/bin/env bash
# Continuous batching on loopback (issue 15): closed-loop streaming clients, N = 1..16, three modes side by
# side (plain and assisted with tandem.assisted.policy=auto on one service, assisted with policy fixed on another), then the "long prompt
# amid streams" scenario (by default the prefill pace on and off: tandem.scheduler.prefill-ratio 1 and 0). Client:
# BatchingBench.java.
#
#   PAUSE_PID_FILE=/work/wt-factory/tools/models/work/train-target.pid tools/bench/batching.sh
#
# Environment (defaults in brackets):
#   PAUSE_PID_FILE  a pid file; that process is stopped (SIGSTOP) while measuring and ALWAYS continued
#                   (SIGCONT) when the script ends, however it ends [unset: nothing paused]
#   RUNS [3]  CLIENTS [1,2,4,8,16]  MAX_TOKENS [256] (e.g. 64,256)  WARMUP [3] s  SECONDS_PER_CELL [15] s
#   PROMPTS [tools/bench/prompts/passages.txt] (held-out passages, 50-250 tokens; heldout.txt: verse openings)
#   LP_RUNS [3]  LP_ARRIVALS [6]  SKIP_LONG_PROMPT [unset]  SKIP_BUILD [unset]
#   LP_CONFIGS ["prefill-ratio=1:TANDEM_SCHEDULER_PREFILL_RATIO=1;prefill-ratio=0:TANDEM_SCHEDULER_PREFILL_RATIO=0"]:
#                   the long-prompt scenario's services, "NAME:VAR=value ...;NAME2:...", side by side
#   OUT [docs/bench]: batching-runs.csv, batching.csv (medians), batching.svg, batching-longprompt*.csv,
#                     batching-log.txt (this script's output, with the machine's conditions)
#   MODES [plain,fixed,auto]: which of the three modes to measure
#   TEMPERATURE [0]: sampling temperature of every request (0: greedy; sampled requests carry no seed, so auto
#                   chooses their k)
#   VARIANTS [unset]: "NAME:VAR=value VAR=value;NAME2:..." also runs every mode on two more services per variant,
#                   started with those environment variables, modes named plain/NAME etc., side by side with the
#                   default service (e.g. VARIANTS="nospin:TANDEM_ONNXRUNTIME_SPINNING=false")
#   SETTLE [10] s: pause after each service is ready, before the next one starts
#   LOAD_MAX [0.5] LOAD_WAIT [90] s: before measuring, wait up to LOAD_WAIT for the 1-minute load average
#                  to fall below LOAD_MAX (then go on anyway; both are recorded)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-docs/bench}
RUNS=${RUNS:-3}
CLIENTS=${CLIENTS:-1,2,4,8,16}
MAX_TOKENS=${MAX_TOKENS:-256}
PROMPTS=${PROMPTS:-tools/bench/prompts/passages.txt}
WARMUP=${WARMUP:-3}
SECONDS_PER_CELL=${SECONDS_PER_CELL:-15}
LP_RUNS=${LP_RUNS:-3}
LP_ARRIVALS=${LP_ARRIVALS:-6}
LOAD_MAX=${LOAD_MAX:-0.5}
LOAD_WAIT=${LOAD_WAIT:-90}
mkdir -p "$OUT"
exec > >(tee "$OUT/batching-log.txt") 2>&1

[ -n "${SKIP_BUILD:-}" ] || ./mvnw -B -o -q package -DskipTests
. tools/bench/serve.sh   # $JAVA, and checks the jar exists

pids=()
paused=""
watcher=""
cleanup() {
  [ -z "$watcher" ] || { kill "$watcher" 2>/dev/null; wait "$watcher" 2>/dev/null; } || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$paused" ]; then kill -CONT "$paused" 2>/dev/null && echo "resumed $paused (SIGCONT)"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# start NAME PORT [VAR=value...]: the packaged service on 127.0.0.1:PORT with 16 decoding slots, in the background.
start() {
  local name=$1 port=$2; shift 2
  env TANDEM_SERVING_MAX_CONCURRENT=16 TANDEM_SERVING_MAX_QUEUED=64 "$@" \
    "$JAVA" -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port" -jar target/quarkus-app/quarkus-run.jar \
    > "/tmp/tandem-batching-$name.log" 2>&1 &
  pids+=($!)
  local p=$!
  for _ in $(seq 900); do
    # then let its JIT settle before the next service starts: an auto service's start-up profile (the cost model's
    # shape, kept for life) timed beside another JVM's compilation came out twice its quiet cost (session 16)
    curl -sf -o /dev/null "http://127.0.0.1:$port/q/health/ready" && { echo "$name ready on $port ($*)"; sleep "${SETTLE:-10}"; return 0; }
    kill -0 "$p" 2>/dev/null || { cat "/tmp/tandem-batching-$name.log"; exit 1; }
    sleep 0.2
  done
  echo "$name not ready after 180 s" >&2; exit 1
}
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
conditions() {
  echo "--- $1: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  # CPU over one second (ps's %CPU would be the average over each process's lifetime); S = T: stopped
  top -b -n 2 -d 1 -o %CPU -w 160 | awk '/^top -/{n++} n==2' | sed -n '7,12p'
  [ -z "$paused" ] || echo "paused process $paused: state $(awk '{print $3}' "/proc/$paused/stat" 2>/dev/null)"
}

if [ -n "${PAUSE_PID_FILE:-}" ]; then
  p=$(cat "$PAUSE_PID_FILE")
  if kill -STOP "$p" 2>/dev/null; then paused=$p; echo "paused $p (SIGSTOP) from $PAUSE_PID_FILE"; else echo "could not pause $p"; fi
fi
if [ -n "$paused" ]; then
  # Someone else may resume it (another session pausing the same job ends and sends SIGCONT): say so, stop it again.
  ( while sleep 1; do
      if [ "$(awk '{print $3}' "/proc/$paused/stat" 2>/dev/null)" != T ] && kill -0 "$paused" 2>/dev/null; then
        echo "WARNING $(date -u +%H:%M:%S): $paused was running again (resumed by someone else); stopped it again"
        kill -STOP "$paused" 2>/dev/null || true
      fi
    done ) &
  watcher=$!
fi
echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' (src modified)'); $(nproc) cores; $("$JAVA" -version 2>&1 | head -1)"
echo "TEMPERATURE=${TEMPERATURE:-0} PROMPTS=$PROMPTS RUNS=$RUNS CLIENTS=$CLIENTS MAX_TOKENS=$MAX_TOKENS WARMUP=$WARMUP SECONDS_PER_CELL=$SECONDS_PER_CELL LP_RUNS=$LP_RUNS LP_ARRIVALS=$LP_ARRIVALS"
for _ in $(seq "$LOAD_WAIT"); do
  awk -v m="$LOAD_MAX" '{exit !($1 < m)}' /proc/loadavg && break
  sleep 1
done
conditions "before"

# Two services, both running all the time, one idle while the other is measured, so the modes alternate cell by
# cell: one with policy auto serves the auto mode AND the plain mode ("assisted": false never speculates), so that
# auto / plain compares two kinds of request in one JVM, as the A/B experiment does (across two JVMs the noise was
# +-0.3 per run); the other, with policy fixed, serves the fixed mode.
start fixed 18091 TANDEM_ASSISTED_POLICY=fixed
start auto 18092 TANDEM_ASSISTED_POLICY=auto
want=",${MODES:-plain,fixed,auto},"
# pick PORT_FIXED PORT_AUTO SUFFIX: the wanted modes on those services, names suffixed (plain on the auto service)
pick() {
  local m=""
  [[ $want == *,plain,* ]] && m="$m,plain$3:$2:false"
  [[ $want == *,fixed,* ]] && m="$m,fixed$3:$1:true"
  [[ $want == *,auto,* ]] && m="$m,auto$3:$2:true"
  echo "$m"
}
modes=$(pick 18091 18092 "")
port=18093
IFS=';' read -ra variants <<< "${VARIANTS:-}"
for v in "${variants[@]}"; do
  [ -n "$v" ] || continue
  vname=${v%%:*}
  read -ra venv <<< "${v#*:}"
  start "fixed-$vname" "$port" TANDEM_ASSISTED_POLICY=fixed "${venv[@]}"
  start "auto-$vname" $((port + 1)) TANDEM_ASSISTED_POLICY=auto "${venv[@]}"
  modes="$modes$(pick "$port" $((port + 1)) "/$vname")"
  port=$((port + 2))
done
modes=${modes#,}
"$JAVA" tools/bench/BatchingBench.java closed modes="$modes" \
  prompts="$PROMPTS" temperature="${TEMPERATURE:-0}" clients="$CLIENTS" max_tokens="$MAX_TOKENS" runs="$RUNS" warmup="$WARMUP" seconds="$SECONDS_PER_CELL" \
  runs_csv="$OUT/batching-runs.csv" csv="$OUT/batching.csv"
conditions "after the closed-loop runs"
grep -hE "ERROR|WARN" /tmp/tandem-batching-fixed*.log /tmp/tandem-batching-auto*.log | head -20 || true
# the start-up step profile each service priced candidates with (auto's cost model keeps its shape for life)
for f in /tmp/tandem-batching-fixed*.log /tmp/tandem-batching-auto*.log; do
  echo "$(basename "$f" .log): $(grep -ho "step profile in .*" "$f" | head -1)"
done
stop_all

if [ -z "${SKIP_LONG_PROMPT:-}" ]; then
  # LP_CONFIGS: "NAME:VAR=value ...;NAME2:..." one service each, side by side, alternating run by run
  IFS=';' read -ra lpconfigs <<< "${LP_CONFIGS:-prefill-ratio=1:TANDEM_SCHEDULER_PREFILL_RATIO=1;prefill-ratio=0:TANDEM_SCHEDULER_PREFILL_RATIO=0}"
  lp=""; port=18093; lpnames=()
  for c in "${lpconfigs[@]}"; do
    cname=${c%%:*}
    read -ra cenv <<< "${c#*:}"
    start "lp-$port" "$port" "${cenv[@]}"
    lp="$lp,$cname:$port"; lpnames+=("/tmp/tandem-batching-lp-$port.log")
    port=$((port + 1))
  done
  "$JAVA" tools/bench/BatchingBench.java longprompt configs="${lp#,}" \
    runs="$LP_RUNS" arrivals="$LP_ARRIVALS" runs_csv="$OUT/batching-longprompt-runs.csv" csv="$OUT/batching-longprompt.csv"
  conditions "after the long-prompt runs"
  grep -hE "ERROR|WARN" "${lpnames[@]}" | head -20 || true
  stop_all
fi

"$JAVA" tools/bench/BatchingBench.java plot in="$OUT/batching.csv" out="$OUT/batching.svg" \
  title="Continuous batching, kjv-target, closed-loop streaming clients, medians of $RUNS runs"
echo "wrote $OUT/batching-runs.csv $OUT/batching.csv $OUT/batching.svg"
