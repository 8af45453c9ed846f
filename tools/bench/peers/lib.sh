# Sourced by the peers scripts: where the sid chroot and the converted models live, and how to run a
# command inside the chroot with the repository visible (read-only) at /repo.
#
#   PEERS_CHROOT  the chroot setup-chroot.sh made (default /var/tmp/tandem-sid)
#   GGUF files are written inside it, under /peers (host path $PEERS_CHROOT/peers).
PEERS_CHROOT=${PEERS_CHROOT:-/var/tmp/tandem-sid}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
PEERS_OUT=$PEERS_CHROOT/peers
[[ -x $PEERS_CHROOT/usr/bin/llama-server ]] || { echo "no llama.cpp chroot at $PEERS_CHROOT: run tools/bench/peers/setup-chroot.sh" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "needs root (chroot)" >&2; exit 1; }
mkdir -p "$PEERS_OUT"

# Mounts what the tools need (proc and sys: ggml reads the CPU's topology there; the repository, read-only)
# unless already mounted, and unmounts only what this script mounted, on exit. (Run one peers script at a time:
# a second one started meanwhile would lose /repo when the first exits.)
_peers_mounted=()
peers_mount() {
  local dst
  dst=$PEERS_CHROOT/proc; mountpoint -q "$dst" || { mount -t proc proc "$dst"; _peers_mounted+=("$dst"); }
  dst=$PEERS_CHROOT/sys; mountpoint -q "$dst" || { mount --bind -o ro /sys "$dst"; _peers_mounted+=("$dst"); }
  dst=$PEERS_CHROOT/repo; mkdir -p "$dst"
  if ! mountpoint -q "$dst"; then
    mount --bind "$REPO" "$dst" && mount -o remount,bind,ro "$dst"
    _peers_mounted+=("$dst")
  fi
  trap peers_cleanup EXIT
}
# Stops the servers this script started (by pid), then unmounts.
_peers_pids=()
peers_cleanup() {
  local i
  peers_resume_training
  for i in "${_peers_pids[@]}"; do kill "$i" 2>/dev/null || true; wait "$i" 2>/dev/null || true; done
  _peers_pids=()
  for ((i = ${#_peers_mounted[@]} - 1; i >= 0; i--)); do umount -l "${_peers_mounted[i]}" 2>/dev/null || true; done
  _peers_mounted=()
}

# wait_ready URL PID LOG: until URL answers 200 (up to 120 s) or the process dies.
wait_ready() {
  local _
  for _ in $(seq 600); do
    curl -sf -o /dev/null "$1" && return 0
    kill -0 "$2" 2>/dev/null || { tail -n 30 "$3" >&2; exit 1; }
    sleep 0.2
  done
  echo "not ready after 120 s: $1 (log $3)" >&2
  exit 1
}

# start_llama NAME PORT LLAMA_SERVER_ARGS...: a llama-server in the chroot on 127.0.0.1:PORT (log
# $PEERS_OUT/NAME.log), stopped on exit; returns once /health answers.
start_llama() {
  local name=$1 port=$2; shift 2
  if curl -s -o /dev/null "http://127.0.0.1:$port/health"; then
    echo "port $port is taken (a server left over from another run?)" >&2
    exit 1
  fi
  # chroot itself, not the in_chroot function: a function run with & is a subshell whose pid is not the server's
  chroot "$PEERS_CHROOT" llama-server --host 127.0.0.1 --port "$port" "$@" >"$PEERS_OUT/$name.log" 2>&1 &
  local p=$!
  _peers_pids+=("$p")
  wait_ready "http://127.0.0.1:$port/health" "$p" "$PEERS_OUT/$name.log"
}

# start_tandem PORT: the packaged Tandem service (serve.sh's JDK; default configuration: the bundled target
# with its draft) on 127.0.0.1:PORT, log $PEERS_OUT/tandem.log, stopped on exit.
start_tandem() {
  local java
  java=$(bash -c 'for j in /usr/lib/jvm/*; do [ -x "$j/bin/java" ] && grep -qE "JAVA_VERSION=\"(2[5-9]|[3-9][0-9])" "$j/release" 2>/dev/null && echo "$j/bin/java" && break; done')
  [[ -n $java ]] || { echo "no JDK >= 25 under /usr/lib/jvm" >&2; exit 1; }
  [[ -f $REPO/target/quarkus-app/quarkus-run.jar ]] || { echo "build Tandem first: ./mvnw -B -o package -DskipTests" >&2; exit 1; }
  if curl -s -o /dev/null "http://127.0.0.1:$1/q/health/ready"; then
    echo "port $1 is taken (a server left over from another run?)" >&2
    exit 1
  fi
  (cd "$REPO" && exec "$java" -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$1" \
    ${TANDEM_GRAPH:+-Dtandem.target.graph=$TANDEM_GRAPH -Dtandem.draft.graph=$TANDEM_GRAPH} -jar target/quarkus-app/quarkus-run.jar) \
    >"$PEERS_OUT/tandem.log" 2>&1 &
  local p=$!
  _peers_pids+=("$p")
  wait_ready "http://127.0.0.1:$1/q/health/ready" "$p" "$PEERS_OUT/tandem.log"
}
# in_chroot CMD ARGS...: runs CMD inside the chroot (after peers_mount), working directory /.
in_chroot() { chroot "$PEERS_CHROOT" "$@"; }

# This machine's etiquette (2 shared cores): the model factory's background training, if its pid file exists,
# is paused (SIGSTOP) while timing and resumed (SIGCONT) on exit. PEERS_PAUSE_PIDFILE= (empty) turns it off.
PEERS_PAUSE_PIDFILE=${PEERS_PAUSE_PIDFILE-/work/wt-factory/tools/models/work/train-op.pid}
_peers_paused=""
peers_pause_training() {
  local p
  [[ -n $PEERS_PAUSE_PIDFILE && -f $PEERS_PAUSE_PIDFILE ]] || return 0
  p=$(cat "$PEERS_PAUSE_PIDFILE" 2>/dev/null) || return 0
  if [[ -n $p ]] && kill -STOP "$p" 2>/dev/null; then
    _peers_paused=$p
    echo "== paused the background training (pid $p) until this script ends"
  fi
}
peers_resume_training() {
  [[ -n $_peers_paused ]] && kill -CONT "$_peers_paused" 2>/dev/null && echo "== resumed pid $_peers_paused"
  _peers_paused=""
  return 0
}

# quiet_check LABEL: llama.cpp with -t 2 on 2 cores collapses when anything else runs (its threads meet at a
# barrier per operator), and so would any comparison. Measures the CPU busy share over 5 s (/proc/stat), shows
# the load average and the busiest processes, and refuses (exit 2) above PEERS_MAX_BUSY percent (default 10)
# unless PEERS_FORCE=1, which only warns (and the warning is written next to the results). PEERS_WAIT_QUIET=N
# keeps measuring every 30 s for up to N seconds before giving up.
quiet_check() {
  local busy waited=0
  while :; do
    busy=$(cpu_busy_percent)
    echo "== quiet check ($1): CPU busy ${busy}% over 5 s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
    ((busy > ${PEERS_MAX_BUSY:-10})) || return 0
    top -b -d 2 -n 2 -w 160 | awk '/^top -/{n++} n==2' | sed -n '7,12p' | cut -c1-120
    ((waited < ${PEERS_WAIT_QUIET:-0})) || break
    sleep 25
    waited=$((waited + 30))
  done
  if [[ ${PEERS_FORCE:-0} == 1 ]]; then
    echo "WARNING: the machine was not quiet (${busy}% busy at '$1'); these timings are not trustworthy" | tee -a "${PEERS_WARNINGS:-/dev/null}"
  else
    echo "the machine is not quiet (${busy}% busy): stop what runs above, wait (PEERS_WAIT_QUIET=seconds), or PEERS_FORCE=1 to time anyway" >&2
    exit 2
  fi
}

# cpu_busy_percent: share of non-idle CPU time over the next 5 s, all cores (/proc/stat).
cpu_busy_percent() {
  local a b
  read -r -a a </proc/stat
  sleep 5
  read -r -a b </proc/stat
  local i total=0 idle=$(((b[4] + b[5]) - (a[4] + a[5])))
  for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
  echo $((100 * (total - idle) / (total > 0 ? total : 1)))
}
