# Sourced by the soak and overload scripts: finds a JDK >= 25 ($JAVA) and starts the packaged
# service on 127.0.0.1:$PORT in the background ($pid, log in $LOG), stopped when the script exits;
# returns once it is ready (up to 120 s). Extra environment for the service: prefix the call, e.g.
# TANDEM_SERVING_MAX_CONCURRENT=2 start_service.
JAVA=$(JAVA_HOME= TANDEM_JAVA_HOME= bash -c 'for j in /usr/lib/jvm/*; do [ -x "$j/bin/java" ] && grep -qE "JAVA_VERSION=\"(2[5-9]|[3-9][0-9])" "$j/release" 2>/dev/null && echo "$j/bin/java" && break; done')
[ -n "$JAVA" ] || { echo "no JDK >= 25 under /usr/lib/jvm" >&2; exit 1; }
[ -f target/quarkus-app/quarkus-run.jar ] || { echo "build first: ./mvnw -B -o package -DskipTests" >&2; exit 1; }

start_service() {
  "$JAVA" -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$PORT" -jar target/quarkus-app/quarkus-run.jar >"$LOG" 2>&1 &
  pid=$!
  trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
  for _ in $(seq 600); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/q/health/ready" && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$LOG" >&2; exit 1; }
    sleep 0.2
  done
  echo "not ready after 120 s; log: $LOG" >&2
  exit 1
}
