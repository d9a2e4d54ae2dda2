#!/usr/bin/env bash
# The inline filter (`mamori serve` with [dns.filter] and a 1,000,000-entry block list) beside
# dnsdist (Debian 1.7.3, the same list in a Lua SuffixMatchNode), both forwarding to one Unbound,
# driven by dnsperf with the same query mix, in one run. See BENCHMARKS.md "DNS (issue 6)".
#
# usage: bench/dns/run.sh [SECONDS_PER_RUN] [ROUNDS]
#
# Pinning (2 cores), default: the filter under test alone on CPU 1; Unbound and dnsperf share CPU 0
# (SUT_CPU=1 UNBOUND_CPU=0 PERF_CPU=0). With SUT_CPU=0 UNBOUND_CPU=1 PERF_CPU=0 the filter shares
# its core with dnsperf and Unbound has one to itself, so the filter's cost per query decides the
# total. Only one filter runs at a time; rounds alternate mamori, dnsdist, mamori, dnsdist…
#
# Answer caches (CACHE_ENTRIES=N, default 0: none): mamori's `[dns.filter] cache_entries = N` and
# dnsdist's `newPacketCache(N)` on its default pool (default options: TTLs honoured and aged, at
# most 86400 s), so both answer repeated queries without Unbound and the proxies themselves are
# measured. (mamori serves a cached answer before probing its lists when the name was found on no list
# and no list has changed since; dnsdist runs its block rule on every query first. BENCHMARKS.md says more.)
# Busy polling (BUSY_POLL_US=N, default 0: off): mamori's `[dns.filter] busy_poll_us = N`, its UDP
# threads polling their sockets for up to N µs before sleeping (dnsdist has no such setting).
# UDP batching: mamori uses recvmmsg/sendmmsg; dnsdist is given the same with
# `setUDPMultipleMessagesVectorSize(DNSDIST_VECTOR)` (default 32, mamori's batch; 1 = dnsdist's
# own default, recvmsg one query at a time).
#
# CPU budget (SUT_CPU_QUOTA=P, default unset: none): the filter under test, mamori or dnsdist alike, is held to P %
# of its core by the kernel's CFS bandwidth control (a cgroup, v1 or v2, period 10 ms), so that dnsperf, which
# tops out near 385 k q/s on its core here, is not what limits the saturation run. Both get the same budget.
#
# Per run: (1) saturation: dnsperf with 8 clients and 500 queries outstanding, no rate limit →
# queries/s; (2) latency: dnsperf -v at a fixed rate both sustain (LAT_QPS, default 20000) →
# p50/p99 from every query's latency.
set -euo pipefail
SECS=${1:-15}
ROUNDS=${2:-2}
LAT_QPS=${LAT_QPS:-20000}
SUT_CPU=${SUT_CPU:-1}
UNBOUND_CPU=${UNBOUND_CPU:-0}
PERF_CPU=${PERF_CPU:-0}
CACHE_ENTRIES=${CACHE_ENTRIES:-0}
BUSY_POLL_US=${BUSY_POLL_US:-0}
DNSDIST_VECTOR=${DNSDIST_VECTOR:-32}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=${DNS_BENCH_DIR:-/tmp/mamori-dns-bench}
mkdir -p "$W"
# The peers come from Debian (dnsdist 1.7.3 and dnsperf 2.10 on bookworm); installed when missing.
if ! command -v dnsdist > /dev/null || ! command -v dnsperf > /dev/null; then
  apt-get update -q > /dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends dnsdist dnsperf > /dev/null
fi
[ -f "$W/block.txt" ] || python3 "$ROOT/bench/dns/gen.py" "$W" 1000000 200000
[ -n "${SKIP_BUILD:-}" ] || (cd "$ROOT" && cargo build --release -q -p mamori)
MAMORI="$ROOT/target/release/mamori"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PU=$(port); PM=$(port); PD=$(port); PH=$(port)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

cat > "$W/unbound.conf" <<CONF
server:
  interface: 127.0.0.1
  port: $PU
  do-ip6: no
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$W"
  pidfile: "$W/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 0
  num-threads: 1
  so-rcvbuf: 4m
  so-sndbuf: 4m
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  local-zone: "test." nodefault
remote-control:
  control-enable: no
auth-zone:
  name: "bench.test."
  zonefile: "$W/bench.zone"
  for-downstream: yes
  for-upstream: yes
  fallback-enabled: no
CONF
taskset -c "$UNBOUND_CPU" /usr/sbin/unbound -d -c "$W/unbound.conf" > "$W/unbound.log" 2>&1 &
PIDS+=($!)

cat > "$W/mamori.toml" <<CONF
data_dir = "$W/mamori-data"
[server]
listen = "127.0.0.1:$PH"
[log]
level = "warn"
[dns.filter]
listen = "127.0.0.1:$PM"
upstream = "127.0.0.1:$PU"
cache_entries = $CACHE_ENTRIES
busy_poll_us = $BUSY_POLL_US
[[dns.lists]]
path = "$W/block.txt"
kind = "block"
source = "bench-1m"
format = "plain"
CONF

cat > "$W/dnsdist.conf" <<CONF
setUDPMultipleMessagesVectorSize($DNSDIST_VECTOR)
setLocal("127.0.0.1:$PD")
setSecurityPollSuffix("")
newServer({address="127.0.0.1:$PU", checkName="h1.bench.test.", checkInterval=5})
smn = newSuffixMatchNode()
local n = 0
for line in io.lines("$W/block.txt") do
  if line:sub(1, 1) ~= "#" and line ~= "" then smn:add(line); n = n + 1 end
end
addAction(SuffixMatchNodeRule(smn, true), RCodeAction(DNSRCode.NXDOMAIN))
infolog("block list loaded: " .. n .. " names")
CONF
if [ "$CACHE_ENTRIES" -gt 0 ]; then
  echo "getPool(\"\"):setCache(newPacketCache($CACHE_ENTRIES))" >> "$W/dnsdist.conf"
fi
echo "caches: $CACHE_ENTRIES entries each; dnsdist UDP vector size $DNSDIST_VECTOR; CPU budget ${SUT_CPU_QUOTA:-100} %; mamori busy poll $BUSY_POLL_US µs"

wait_answer() { # PORT: until h1.bench.test answers
  for _ in $(seq 1 600); do
    if python3 "$ROOT/bench/dns/q.py" "$1" h1.bench.test 2>/dev/null | grep -q "NOERROR 1"; then return 0; fi
    sleep 0.2
  done
  echo "no answer on port $1" >&2; return 1
}
wait_answer "$PU"

start_mamori() {
  rm -rf "$W/mamori-data"
  local t0; t0=$(date +%s.%N)
  taskset -c "$SUT_CPU" "$MAMORI" --config "$W/mamori.toml" serve > "$W/mamori.log" 2>&1 &
  SUT=$!; PIDS+=($SUT); wait_answer "$PM"; limit_cpu "$SUT"
  echo "mamori ready in $(echo "$(date +%s.%N) - $t0" | bc) s (rss $(ps -o rss= -p $SUT) KiB)"
}
start_dnsdist() {
  local t0; t0=$(date +%s.%N)
  taskset -c "$SUT_CPU" dnsdist --supervised --disable-syslog -C "$W/dnsdist.conf" > "$W/dnsdist.log" 2>&1 &
  SUT=$!; PIDS+=($SUT); wait_answer "$PD"; limit_cpu "$SUT"
  echo "dnsdist ready in $(echo "$(date +%s.%N) - $t0" | bc) s (rss $(ps -o rss= -p $SUT) KiB)"
}
# Puts process $1 (all its threads) under SUT_CPU_QUOTA % of one core, when that is set.
limit_cpu() {
  [ -n "${SUT_CPU_QUOTA:-}" ] || return 0
  local period=10000 quota=$((SUT_CPU_QUOTA * 100)) g
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    g=/sys/fs/cgroup/mamori-bench-sut; mkdir -p "$g"
    echo "+cpu" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
    echo "$quota $period" > "$g/cpu.max"
  else
    g=/sys/fs/cgroup/cpu/mamori-bench-sut; mkdir -p "$g"
    echo "$period" > "$g/cpu.cfs_period_us"; echo "$quota" > "$g/cpu.cfs_quota_us"
  fi
  echo "$1" > "$g/cgroup.procs"
  echo "CPU budget: $SUT_CPU_QUOTA % of one core ($g)"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime of the process, all threads
stop_sut() { kill "$SUT"; wait "$SUT" 2>/dev/null || true; }

check_block() { # PORT
  local rc; rc=$(python3 "$ROOT/bench/dns/q.py" "$1" "www.$(sed -n 5p "$W/block.txt")" || true)
  [ "$rc" = "NXDOMAIN 0" ] || { echo "listed name not blocked on $1: $rc" >&2; exit 1; }
}

measure() { # NAME PORT
  local name=$1 p=$2
  check_block "$p"
  taskset -c "$PERF_CPU" dnsperf -s 127.0.0.1 -p "$p" -d "$W/queries.txt" -c 8 -q 500 -l 3 > /dev/null 2>&1 # warm-up
  local c0 c1; c0=$(cpu_ticks "$SUT")
  taskset -c "$PERF_CPU" dnsperf -s 127.0.0.1 -p "$p" -d "$W/queries.txt" -c 8 -q 500 -l "$SECS" > "$W/$name.sat.txt" 2>&1
  c1=$(cpu_ticks "$SUT")
  local qps lost avg
  qps=$(awk '/Queries per second/ {print $4}' "$W/$name.sat.txt")
  lost=$(awk '/Queries lost/ {print $3}' "$W/$name.sat.txt")
  avg=$(awk '/Average Latency/ {print $4}' "$W/$name.sat.txt")
  local c2 c3; c2=$(cpu_ticks "$SUT")
  taskset -c "$PERF_CPU" dnsperf -v -s 127.0.0.1 -p "$p" -d "$W/queries.txt" -c 8 -q 500 -Q "$LAT_QPS" -l "$SECS" > "$W/$name.lat.txt" 2>&1
  c3=$(cpu_ticks "$SUT")
  python3 - "$W/$name.lat.txt" "$name" "$qps" "$lost" "$avg" "$((c1 - c0))" "$SECS" "$(getconf CLK_TCK)" "$((c3 - c2))" <<'PY'
import sys
path, name, qps, lost, avg, ticks, secs, hz, lat_ticks = sys.argv[1:10]
cpu = int(ticks) / int(hz)
cpu_us = cpu / (float(qps) * float(secs)) * 1e6
lat = []
for line in open(path):
    if line.startswith("> "):
        parts = line.split()
        try:
            lat.append(float(parts[-1]))
        except ValueError:
            pass
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1e6 if lat else float("nan")
print(f"RESULT {name} qps={float(qps):.0f} lost={lost} cpu={cpu / float(secs) * 100:.0f}% cpu_us_per_q={cpu_us:.2f} sat_avg_us={float(avg)*1e6:.0f} lat_n={len(lat)} p50_us={q(0.50):.0f} p99_us={q(0.99):.0f} p999_us={q(0.999):.0f} lat_cpu={int(lat_ticks) / int(hz) / float(secs) * 100:.0f}%")
PY
}

echo "unbound alone (CPU $UNBOUND_CPU, dnsperf on CPU $PERF_CPU):"
taskset -c "$PERF_CPU" dnsperf -s 127.0.0.1 -p "$PU" -d "$W/queries.txt" -c 8 -q 500 -l 5 2>&1 | grep -E "Queries per second|Average Latency"
for r in $(seq 1 "$ROUNDS"); do
  start_mamori; measure "mamori-r$r" "$PM"; stop_sut
  start_dnsdist; measure "dnsdist-r$r" "$PD"; stop_sut
done
