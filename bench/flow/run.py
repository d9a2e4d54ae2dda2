#!/usr/bin/env python3
"""mamori's flow collector and DDoS detection beside FastNetMon 1.2.4 (Debian), in one run.

Both get the same NetFlow v9 stream (bench/src/bin/flow_send.rs, same seed) on loopback:
mamori's collector and engine as `mamori serve` runs them (bench/src/bin/flow_collect.rs), and
FastNetMon with its netflow plugin, a ban threshold and a notify script, no BGP.

1. Throughput: at increasing rates, each tool alone gets the stream for --secs; flows counted by
   the tool (mamori: the collector's per-exporter counters, less flows its engine had to drop;
   FastNetMon: fastnetmon_netflow_v9_total_flows on its Prometheus endpoint) are compared with
   flows sent, and CPU seconds (utime+stime from /proc/PID/stat) per million flows are noted, with
   the generator's own CPU (it runs on the same cores as the tool).
2. Detection: background at --detect-fps plus an NTP reflection toward 203.0.113.77 at
   --attack-pps from 4 s on; time from the first attack datagram to mamori's finding and
   announcement, and to FastNetMon's ban (its notify script), each tool alone.

    bench/flow/run.sh            # builds the bins and runs this with the defaults
"""
import argparse, json, os, resource, shutil, socket, subprocess, sys, tempfile, threading, time, urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release")
TICK = os.sysconf("SC_CLK_TCK")


def free_port(kind=socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu(pid):
    """CPU seconds (user+system) of a process and its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Mamori:
    name = "mamori"

    def __init__(self, tmp, host_pps, window):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "flow_collect"), "--listen", f"127.0.0.1:{self.port}",
             "--prefix", "203.0.113.0/24,10.0.0.0/16", "--host-pps", str(host_pps), "--window-secs", str(window)],
            stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "mamori.log"), "w"), text=True)
        self.last = {"flows": 0, "dropped": 0}
        self.events = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        time.sleep(1.0)

    def _read(self):
        for line in self.proc.stdout:
            try:
                j = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                if "event" in j:
                    self.events.append(j)
                else:
                    self.last = j

    def counted(self):
        time.sleep(0.25)
        with self.lock:
            return self.last["flows"] - self.last["dropped"]

    def detected(self, since, ip):
        target = f"prefix:{ip}/32"
        with self.lock:
            ev = [e for e in self.events if e.get("target") == target and e["t"] >= since]
        f = [e["t"] for e in ev if e["event"] == "finding"]
        a = [e["t"] for e in ev if e["event"] == "announce"]
        return (min(f) if f else None, min(a) if a else None)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class FastNetMon:
    name = "fastnetmon"

    def __init__(self, tmp, host_pps, window):
        self.port = free_port()
        self.prom = free_port(socket.SOCK_STREAM)
        self.dir = os.path.join(tmp, "fnm")
        os.makedirs(self.dir, exist_ok=True)
        self.notify = os.path.join(self.dir, "notify.log")
        script = os.path.join(self.dir, "notify.sh")
        with open(script, "w") as f:
            f.write(f"#!/bin/sh\necho \"$(date +%s.%N) $1 $2 $3 $4\" >> {self.notify}\ncat > /dev/null\n")
        os.chmod(script, 0o755)
        with open(os.path.join(self.dir, "networks"), "w") as f:
            f.write("203.0.113.0/24\n10.0.0.0/16\n")
        open(os.path.join(self.dir, "white"), "w").close()
        conf = os.path.join(self.dir, "fastnetmon.conf")
        with open(conf, "w") as f:
            f.write(f"""logging_level = info
disable_usage_report = on
enable_ban = on
enable_ban_ipv6 = off
process_incoming_traffic = on
process_outgoing_traffic = off
ban_time = 1900
unban_only_if_attack_finished = on
networks_list_path = {self.dir}/networks
white_list_path = {self.dir}/white
check_period = 1
enable_connection_tracking = off
ban_for_pps = on
ban_for_bandwidth = off
ban_for_flows = off
threshold_pps = {host_pps}
threshold_mbps = 100000
threshold_flows = 100000000
pcap = off
netflow = on
sflow = off
mirror_afpacket = off
average_calculation_time = {window}
speed_calculation_delay = 1
netflow_port = {self.port}
netflow_host = 127.0.0.1
netflow_sampling_ratio = 1
notify_script_path = {script}
exabgp = off
gobgp = off
monitor_local_ip_addresses = off
pid_path = {self.dir}/fastnetmon.pid
cli_stats_file_path = {self.dir}/fastnetmon.dat
cli_stats_ipv6_file_path = {self.dir}/fastnetmon_ipv6.dat
enable_api = off
prometheus = on
prometheus_port = {self.prom}
prometheus_host = 127.0.0.1
""")
        self.proc = subprocess.Popen(
            ["fastnetmon", "--configuration_file", conf, "--log_file", os.path.join(self.dir, "fastnetmon.log"),
             "--disable_pid_logic"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2.0)

    def counted(self):
        time.sleep(0.25)
        body = urllib.request.urlopen(f"http://127.0.0.1:{self.prom}/metrics", timeout=5).read().decode()
        for line in body.splitlines():
            if line.startswith("fastnetmon_netflow_v9_total_flows "):
                return int(float(line.split()[1]))
        raise RuntimeError("no fastnetmon_netflow_v9_total_flows")

    def detected(self, since, ip):
        if not os.path.exists(self.notify):
            return (None, None)
        t = [float(l.split()[0]) for l in open(self.notify)
             if l.split()[1:2] == [ip] and " ban" in l and float(l.split()[0]) >= since]
        return (min(t) if t else None, None)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def send(port, fps, secs, extra=()):
    out = subprocess.run([os.path.join(BIN, "flow_send"), "--to", f"127.0.0.1:{port}", "--fps", str(fps),
                          "--secs", str(secs), *extra], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--rates",
        default="400000,800000,1600000,2400000,3200000,4000000,4400000,4800000,5200000,8000000,9600000,10400000,11200000",
        help="flows/s to send, comma-separated; fine steps where the two tools start to drop on a 2-core VM",
    )
    ap.add_argument("--secs", type=float, default=5.0)
    ap.add_argument("--host-pps", type=int, default=20000)
    ap.add_argument("--window", type=int, default=1, help="mamori's window and FastNetMon's average_calculation_time (s)")
    ap.add_argument("--detect-fps", type=int, default=100000)
    ap.add_argument("--attack-pps", type=int, default=200000)
    ap.add_argument("--repeat", type=int, default=3, help="detection runs per tool")
    ap.add_argument("--json", help="write results here too")
    a = ap.parse_args()
    if not shutil.which("fastnetmon"):
        sys.exit("fastnetmon is not installed (apt-get install fastnetmon)")
    tmp = tempfile.mkdtemp(prefix="mamori-flow-bench-")
    results = {"throughput": [], "detection": [], "args": vars(a)}
    tools = [Mamori(tmp, a.host_pps, a.window), FastNetMon(tmp, a.host_pps, a.window)]
    try:
        print(f"{'flows/s sent':>12} | {'tool':<10} | {'accepted':>9} | {'share':>6} | {'CPU s/M flows':>13} | {'CPU %':>6}"
              f" | {'generator CPU %':>15}")
        for rate in [int(r) for r in a.rates.split(",")]:
            for t in tools:
                before, c0, w0 = t.counted(), cpu(t.proc.pid), time.time()
                # The generator's CPU (the only child reaped during the step): it shares the two
                # cores with the tool, so a busy generator means the rates measure contention.
                g0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                s = send(t.port, rate, a.secs)
                g1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                gen = (g1.ru_utime + g1.ru_stime) - (g0.ru_utime + g0.ru_stime)
                time.sleep(1.0)
                after, c1, w1 = t.counted(), cpu(t.proc.pid), time.time()
                got = after - before
                share = got / s["sent_flows"] if s["sent_flows"] else 0
                r = {"tool": t.name, "target_fps": rate, "sent_flows": s["sent_flows"],
                     "sent_fps": s["sent_flows"] / s["secs"], "accepted": got, "share": share,
                     "cpu_s": c1 - c0, "cpu_s_per_mflow": (c1 - c0) / max(got, 1) * 1e6,
                     "cpu_pct": (c1 - c0) / (w1 - w0) * 100,
                     "generator_cpu_pct": gen / max(s["secs"], 1e-9) * 100}
                results["throughput"].append(r)
                print(f"{r['sent_fps']:>12,.0f} | {t.name:<10} | {got:>9,} | {share:>6.1%} | "
                      f"{r['cpu_s_per_mflow']:>13.2f} | {r['cpu_pct']:>6.1f} | {r['generator_cpu_pct']:>15.1f}",
                      flush=True)
        for t in tools:
            for i in range(a.repeat):
                ip = f"203.0.113.{70 + i}"
                s = send(t.port, a.detect_fps, 8.0,
                         ["--attack-after", "4", "--attack-pps", str(a.attack_pps), "--attack-dst", ip,
                          "--seed", str(100 + i)])
                time.sleep(2.0)
                t0 = s["attack_start"]
                found, announced = t.detected(t0, ip)
                r = {"tool": t.name, "run": i, "attack_start": t0,
                     "detect_s": None if found is None else found - t0,
                     "announce_s": None if announced is None else announced - t0}
                results["detection"].append(r)
                print(f"detection {t.name} run {i}: detected after "
                      f"{'never' if found is None else f'{found - t0:.2f} s'}"
                      + ("" if announced is None else f", announcement handed over after {announced - t0:.2f} s"),
                      flush=True)
    finally:
        for t in tools:
            t.stop()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
