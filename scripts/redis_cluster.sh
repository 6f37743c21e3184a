#!/usr/bin/env bash
# A throw-away Redis Cluster on loopback for the tests: three masters and three replicas.
#
#   scripts/redis_cluster.sh start [first_port] [dir]   # ports first_port … first_port+5 (default 7301)
#   scripts/redis_cluster.sh stop  [first_port] [dir]
#
# Prints the cluster URL on start (QUESTLINE_TEST_REDIS_CLUSTER_URL for tests/conftest.py). No
# persistence; a short node timeout so a stopped master's replica is promoted within a few seconds.
set -euo pipefail
action="${1:-start}"
first="${2:-7301}"
dir="${3:-${TMPDIR:-/tmp}/questline-redis-cluster-$first}"
ports=$(seq "$first" $((first + 5)))

if [ "$action" = "stop" ]; then
  for port in $ports; do
    redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
  done
  rm -rf "$dir"
  exit 0
fi

# Cluster mode needs Redis ≥ 3; sharded pub/sub and this script's flags need 7.
version=$(redis-server --version | sed -E 's/.*v=([0-9]+)\..*/\1/')
if [ "$version" -lt 7 ]; then
  echo "redis-server $version is too old for the cluster tests (need 7 or later)" >&2
  exit 1
fi
mkdir -p "$dir"
for port in $ports; do
  if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then
    continue  # already running (a previous start)
  fi
  mkdir -p "$dir/$port"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir/$port" --daemonize yes \
    --cluster-enabled yes --cluster-config-file "nodes-$port.conf" --cluster-node-timeout 1500 \
    --save "" --appendonly no --logfile "$dir/$port/redis.log" --pidfile "$dir/$port/redis.pid"
done
for port in $ports; do
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
if ! redis-cli -h 127.0.0.1 -p "$first" cluster info | grep -q "cluster_state:ok"; then
  nodes=""
  for port in $ports; do nodes="$nodes 127.0.0.1:$port"; done
  # shellcheck disable=SC2086
  redis-cli --cluster create $nodes --cluster-replicas 1 --cluster-yes >/dev/null
  for _ in $(seq 1 100); do
    redis-cli -h 127.0.0.1 -p "$first" cluster info | grep -q "cluster_state:ok" && break
    sleep 0.1
  done
fi
redis-cli -h 127.0.0.1 -p "$first" cluster info | grep -q "cluster_state:ok"
echo "redis+cluster://127.0.0.1:$first,127.0.0.1:$((first + 1)),127.0.0.1:$((first + 2))"
