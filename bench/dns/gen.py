#!/usr/bin/env python3
"""Data for bench/dns/run.sh: the block list, the zone Unbound answers from, the query mix.

usage: gen.py OUT_DIR [LIST_SIZE] [QUERIES]

- block.txt: LIST_SIZE distinct registrable names (plain list: each blocks its subtree), random
  labels under common TLDs, as a reputation feed looks;
- bench.zone: `bench.test.` with 20,000 host names (A; AAAA for a third), served by Unbound as
  an auth-zone, so allowed queries are answered without the internet;
- queries.txt (dnsperf format): a shuffled mix of 90 % allowed names (A 70 %, AAAA 20 % of all,
  some AAAA without data → NOERROR/NODATA) and 10 % names below listed entries (www., mail.,
  random labels), which both filters answer NXDOMAIN without asking Unbound.
"""
import os
import random
import sys

out = sys.argv[1]
n_list = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
n_q = int(sys.argv[3]) if len(sys.argv) > 3 else 200_000
rng = random.Random(6)
os.makedirs(out, exist_ok=True)
tlds = ["com", "net", "org", "info", "xyz", "top", "jp", "co.jp", "ne.jp", "ru", "cn", "biz", "online", "site"]
alpha = "abcdefghijklmnopqrstuvwxyz0123456789"
listed = []
seen = set()
while len(listed) < n_list:
    label = "".join(rng.choice(alpha) for _ in range(rng.randint(6, 14)))
    name = f"{label}.{rng.choice(tlds)}"
    if name not in seen:
        seen.add(name)
        listed.append(name)
with open(os.path.join(out, "block.txt"), "w") as f:
    f.write(f"# synthetic suffix block list, {n_list} entries\n")
    f.write("\n".join(listed))
    f.write("\n")
hosts = 20_000
with open(os.path.join(out, "bench.zone"), "w") as f:
    f.write("$ORIGIN bench.test.\n$TTL 86400\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1\n")
    for i in range(hosts):
        f.write(f"h{i} A 192.0.{(i >> 8) & 255}.{i & 255}\n")
        if i % 3 == 0:
            f.write(f"h{i} AAAA 2001:db8::{i:x}\n")
with open(os.path.join(out, "queries.txt"), "w") as f:
    for _ in range(n_q):
        r = rng.random()
        if r < 0.70:
            f.write(f"h{rng.randrange(hosts)}.bench.test A\n")
        elif r < 0.90:
            f.write(f"h{rng.randrange(hosts)}.bench.test AAAA\n")
        else:
            sub = rng.choice(["www", "mail", "cdn", "".join(rng.choice(alpha) for _ in range(8))])
            f.write(f"{sub}.{rng.choice(listed)} A\n")
print(f"{out}: {n_list} listed names, {hosts} hosts, {n_q} queries")
