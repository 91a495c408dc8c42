# Shared by the benchmarks that time NBD servers (capture.sh, capture-random.sh): source it
# after setting $work. One server runs at a time, its pid in $server_pid; on exit it is
# stopped and $work removed.
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

wait_for_socket() {
  for _ in $(seq 1 300); do
    [ -S "$1" ] && return 0
    sleep 0.05
  done
  echo "$(basename "$0"): no socket at $1 after 15 s" >&2
  exit 1
}

stop_server() {
  kill -TERM "$server_pid"
  wait "$server_pid" || true
  server_pid=
}
