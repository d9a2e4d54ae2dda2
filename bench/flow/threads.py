#!/usr/bin/env python3
"""CPU per thread of mamori's flow path alone (no peer): for diagnosis, not the side-by-side benchmark.

Starts each given `flow_collect` binary (comma-separated, e.g. a build before and after a change), and at
each rate sends each of them the benchmark's stream (`flow_send`) for 5 s, alternating, REPEAT times. Prints
the share accepted, user and system CPU seconds per million flows accepted, minor page faults per million
flows, and per thread (the engine runs on the main thread, named after the binary; `flow-collector` is the
collector) CPU seconds / minor faults / context switches per million flows.

    cargo build --release -p mamori-bench --bin flow_collect --bin flow_send
    flock /tmp/mamori-bench.lock python3 bench/flow/threads.py target/release/flow_collect 800000,1600000 [REPEAT]
"""
import json, os, socket, subprocess, sys, threading, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release")
TICK = os.sysconf("SC_CLK_TCK")


def stat(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) / TICK, int(f[12]) / TICK, int(f[7])


def threads(pid):
    r = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            f = open(f"/proc/{pid}/task/{t}/stat").read()
            name = f[f.index("(") + 1:f.rindex(")")]
            x = f.rsplit(")", 1)[1].split()
            cs = [int(l.split()[1]) for l in open(f"/proc/{pid}/task/{t}/status") if "ctxt_switches" in l]
            r[t] = (name, (int(x[11]) + int(x[12])) / TICK, int(x[7]), sum(cs))
        except OSError:
            pass
    return r


def port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Collector:
    def __init__(self, exe):
        self.port = port()
        self.p = subprocess.Popen(
            [exe, "--listen", f"127.0.0.1:{self.port}", "--prefix", "203.0.113.0/24,10.0.0.0/16",
             "--host-pps", "20000", "--window-secs", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.last = {"flows": 0, "dropped": 0}
        threading.Thread(target=self.read, daemon=True).start()
        time.sleep(1)

    def read(self):
        for line in self.p.stdout:
            j = json.loads(line)
            if "event" not in j:
                self.last = j

    def counted(self):
        time.sleep(0.25)
        return self.last["flows"] - self.last["dropped"]


def main():
    exes = sys.argv[1].split(",")
    rates = [int(r) for r in sys.argv[2].split(",")]
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    tools = [Collector(e) for e in exes]
    try:
        for rate in rates:
            for _ in range(reps):
                for exe, m in zip(exes, tools):
                    before = m.counted()
                    u0, s0, f0 = stat(m.p.pid)
                    t0 = threads(m.p.pid)
                    out = subprocess.run([os.path.join(BIN, "flow_send"), "--to", f"127.0.0.1:{m.port}", "--fps",
                                          str(rate), "--secs", "5"], capture_output=True, text=True, check=True).stdout
                    sent = json.loads(out.strip().splitlines()[-1])["sent_flows"]
                    time.sleep(1.0)
                    got = max(m.counted() - before, 1)
                    u1, s1, f1 = stat(m.p.pid)
                    t1 = threads(m.p.pid)
                    per = " ".join(
                        f"{v[0]}:{1e6 * (v[1] - t0[k][1]) / got:.3f}/{1e6 * (v[2] - t0[k][2]) / got:.0f}"
                        f"/cs{1e6 * (v[3] - t0[k][3]) / got:.0f}"
                        for k, v in t1.items() if k in t0 and v[1] > t0[k][1])
                    print(f"{exe} {rate} share {got / sent:6.1%} user {1e6 * (u1 - u0) / got:.3f} "
                          f"sys {1e6 * (s1 - s0) / got:.3f} s/Mflow minflt/M {1e6 * (f1 - f0) / got:.0f} | {per}",
                          flush=True)
    finally:
        for m in tools:
            m.p.kill()


if __name__ == "__main__":
    main()
