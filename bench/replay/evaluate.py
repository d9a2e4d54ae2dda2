#!/usr/bin/env python3
"""Detection quality of `mamori replay cdr` against a synthetic data set's truth file.

Reads the truth written by `mamori-cdr-synth --truth` (one JSON object per episode) and the events
`mamori replay cdr` printed (one JSON object per line: at, measure, event, target, ...), optionally
the CDR itself, and reports:

- per fraud episode: detected by `phone.suspend-line-on-surge` (T5)? latency from the episode's
  first call to the first T5 event on one of its lines, and to the first action (suspension applied
  or consent requested); with --cdr also the share of the episode's charges incurred before the
  line's first T5 action (what detection did not prevent);
- median / p90 latency, overall and by fraud kind and time class;
- false positives: lines with a T5 event while no fraud episode of theirs was under way, split by
  the hard-negative episode they were in at the time (or "ordinary traffic");
- T6 (`phone.suspend-sip-auth-from-ip`): addresses acted on vs the fraudsters' addresses;
- T7 (`phone.restrict-country`): countries vs the countries of fraud campaigns.

Only the standard library is used. Output: markdown on stdout; --json FILE for the numbers.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from collections import Counter, defaultdict
from datetime import datetime, timedelta

T5 = "phone.suspend-line-on-surge"
T6 = "phone.suspend-sip-auth-from-ip"
T7 = "phone.restrict-country"
# Events that start something; `notified` and `lifted` only follow one of these.
OPENING = {"finding", "consent-requested", "applied", "pending-approval"}
ACTING = {"consent-requested", "applied", "pending-approval"}
# A fraud line's alarms count as true positives from a little before its first call (clock skew,
# probes) until some time after its last call ends (windows close, evidence drains).
BEFORE = timedelta(minutes=5)
AFTER = timedelta(hours=2)
# A hard negative explains an alarm from shortly before it until some hours after it.
NEG_BEFORE = timedelta(hours=1)
NEG_AFTER = timedelta(hours=6)
# Fraud kinds whose calls come from an address that is not the line's own.
# Premium-priced calling codes some subscribers call legitimately (ships, satellite phones, family in Cuba).
PREMIUM_CODES = {"870", "881", "882", "883", "53"}
FOREIGN_IP_KINDS = {"fraud-stolen-credentials", "fraud-campaign", "fraud-country-campaign"}


def ts(s: str) -> datetime:
    return datetime.fromisoformat(s)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def fmt_secs(s: float | None) -> str:
    if s is None:
        return "–"
    if abs(s) < 120:
        return f"{s:.0f} s"
    if abs(s) < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def load_jsonl(path: str) -> list[dict]:
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{n}: not JSON: {e}")
    return out


def country_of(called: str) -> str | None:
    """Calling code (as text) of a dialled number, for the codes the generator uses; None if domestic."""
    if called.startswith("+"):
        digits = called[1:]
    elif called.startswith("010"):
        digits = called[3:]
    else:
        return None
    return digits  # matched against known codes by prefix below


def episode_calls_from_cdr(path: str, frauds: list[dict]) -> dict[int, list[tuple[datetime, str, int]]]:
    """For each fraud episode: its calls (start, line, charge), found by line, address, country, time."""
    by_line: dict[str, list[dict]] = defaultdict(list)
    for e in frauds:
        for line in e["line_ids"]:
            by_line[line].append(e)
    out: dict[int, list] = defaultdict(list)
    seen: set[str] = set()
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        for row in csv.reader(f):
            if len(row) != 8 or row[3] not in by_line:
                continue
            if row[0] in seen:
                continue
            digits = country_of(row[5])
            if digits is None:
                continue
            try:
                start = ts(row[1])
                charge = int(row[7])
            except ValueError:
                continue
            for e in by_line[row[3]]:
                if row[6] not in e["_ips"] or not any(digits.startswith(c) for c in e["countries"]):
                    continue
                if e["_start"] <= start <= e["_end"]:
                    seen.add(row[0])
                    out[e["episode"]].append((start, row[3], charge))
                    break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("truth", help="truth.jsonl from mamori-cdr-synth --truth")
    ap.add_argument("events", help="events.jsonl from mamori replay cdr")
    ap.add_argument("--cdr", help="the CDR file: adds per-line onsets and the charge incurred before detection")
    ap.add_argument("--profiles", help="line profiles (mamori-cdr-synth --profiles): splits 'ordinary traffic' by line kind")
    ap.add_argument("--json", dest="json_out", help="write the numbers as JSON to this file")
    ap.add_argument("--episodes", action="store_true", help="list every fraud episode (default: the undetected only)")
    args = ap.parse_args()

    truth = load_jsonl(args.truth)
    events = load_jsonl(args.events)
    for e in truth:
        e["_start"], e["_end"] = ts(e["start"]), ts(e["end"])
        e["_ips"] = set(e["source_ips"])
    frauds = [e for e in truth if e["kind"].startswith("fraud-")]
    negatives = [e for e in truth if e["kind"].startswith("negative-")]

    for ev in events:
        ev["_at"] = ts(ev["at"])
    events.sort(key=lambda ev: ev["_at"])
    t5 = [ev for ev in events if ev["measure"] == T5 and ev["target"].startswith("line:")]
    t6 = [ev for ev in events if ev["measure"] == T6 and ev["target"].startswith("ip:")]
    t7 = [ev for ev in events if ev["measure"] == T7 and ev["target"].startswith("country:")]

    # First opening / acting T5 event per line, and all opening events per line.
    t5_by_line: dict[str, list[dict]] = defaultdict(list)
    for ev in t5:
        if ev["event"] in OPENING:
            t5_by_line[ev["target"][5:]].append(ev)

    # Suspensions (T5 `applied`) per line, with when they were lifted (or never, in this data).
    applied_at: dict[str, tuple[str, datetime]] = {}
    suspensions: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for ev in t5:
        if ev["event"] == "applied" and ev.get("action_id"):
            applied_at[ev["action_id"]] = (ev["target"][5:], ev["_at"])
        elif ev["event"] == "lifted" and ev.get("action_id") in applied_at:
            line, at = applied_at.pop(ev["action_id"])
            suspensions[line].append((at, ev["_at"]))
    for line, at in applied_at.values():
        suspensions[line].append((at, datetime.max.replace(tzinfo=at.tzinfo)))

    def suspended_at(line: str, t: datetime) -> bool:
        return any(a <= t < b for a, b in suspensions.get(line, []))

    fraud_windows: dict[str, list[tuple[datetime, datetime, dict]]] = defaultdict(list)
    for e in frauds:
        for line in e["line_ids"]:
            fraud_windows[line].append((e["_start"] - BEFORE, e["_end"] + AFTER, e))
    neg_windows: dict[str, list[tuple[datetime, datetime, dict]]] = defaultdict(list)
    for e in negatives:
        for line in e["line_ids"]:
            neg_windows[line].append((e["_start"] - NEG_BEFORE, e["_end"] + NEG_AFTER, e))

    calls = episode_calls_from_cdr(args.cdr, frauds) if args.cdr else None
    profiles: dict[str, tuple[str, set[str]]] = {}
    if args.profiles:
        with open(args.profiles, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                profiles[row["line_id"]] = (row["kind"], set(filter(None, row["usual_countries"].split(";"))))

    # ---- per fraud episode ----
    rows = []
    for e in frauds:
        lines = e["line_ids"]
        window_end = e["_end"] + AFTER
        first_any = None
        first_act = None
        detected_lines = 0
        line_first_act: dict[str, datetime] = {}
        for line in lines:
            evs = [ev for ev in t5_by_line.get(line, []) if e["_start"] - BEFORE <= ev["_at"] <= window_end]
            if evs:
                detected_lines += 1
                first_any = min(first_any or evs[0]["_at"], evs[0]["_at"])
            acts = [ev for ev in evs if ev["event"] in ACTING]
            if acts:
                line_first_act[line] = acts[0]["_at"]
                first_act = min(first_act or acts[0]["_at"], acts[0]["_at"])
        r = {
            "episode": e["episode"],
            "kind": e["kind"],
            "time_class": e["time_class"],
            "lines": len(lines),
            "lines_detected": detected_lines,
            "start": e["start"],
            "calls": e["calls"],
            "charge_jpy": e["charge_jpy"],
            "max_concurrent": e["max_concurrent"],
            "detected": first_any is not None,
            # Lines whose international calls were already suspended (by an earlier alarm) when the
            # episode began: the switch would have refused its calls, so nothing was left to detect.
            "already_suspended": sum(1 for line in lines if suspended_at(line, e["_start"])),
            "latency_s": (first_any - e["_start"]).total_seconds() if first_any else None,
            "action_latency_s": (first_act - e["_start"]).total_seconds() if first_act else None,
        }
        if calls is not None:
            own = calls.get(e["episode"], [])
            onsets: dict[str, datetime] = {}
            for start, line, _ in own:
                onsets[line] = min(onsets.get(line, start), start)
            before = sum(c for s, line, c in own if line not in line_first_act or s < line_first_act[line])
            total = sum(c for _, _, c in own)
            r["charge_before_action_jpy"] = before
            r["charge_found_jpy"] = total
            per_line = [
                (line_first_act[line] - onsets[line]).total_seconds()
                for line in lines
                if line in line_first_act and line in onsets
            ]
            r["per_line_action_latency_s"] = per_line
        rows.append(r)

    def summary(rs: list[dict], key: str) -> dict:
        lat = [r[key] for r in rs if r[key] is not None]
        return {
            "episodes": len(rs),
            "detected": len(lat),
            "median_s": statistics.median(lat) if lat else None,
            "p90_s": percentile(lat, 0.9),
            "max_s": max(lat) if lat else None,
        }

    overall = summary(rows, "latency_s")
    overall_act = summary(rows, "action_latency_s")

    # ---- false positives (T5) ----
    fp_lines: dict[str, str] = {}
    fp_events_by_kind: Counter = Counter()
    fp_lines_by_kind: dict[str, set] = defaultdict(set)
    fp_event_kinds: dict[str, Counter] = defaultdict(Counter)
    for line, evs in t5_by_line.items():
        for ev in evs:
            if any(a <= ev["_at"] <= b for a, b, _ in fraud_windows.get(line, [])):
                continue
            explained = [n["kind"] for a, b, n in neg_windows.get(line, []) if a <= ev["_at"] <= b]
            if explained:
                why = explained[0]
            elif line in fraud_windows:
                why = "fraud line, outside its episode"
            elif line in profiles:
                kind, usual = profiles[line]
                premium = sorted(usual & PREMIUM_CODES)
                why = f"ordinary traffic: {kind}" + (f" (usually calls {'/'.join(premium)})" if premium else "")
            else:
                why = "ordinary traffic"
            fp_events_by_kind[why] += 1
            fp_lines.setdefault(line, why)
            fp_lines_by_kind[why].add(line)
            fp_event_kinds[why][ev["event"]] += 1
    fp_by_kind = {k: len(v) for k, v in fp_lines_by_kind.items()}
    neg_lines_by_kind: dict[str, set] = defaultdict(set)
    for e in negatives:
        neg_lines_by_kind[e["kind"]].update(e["line_ids"])
    fraud_lines = {line for e in frauds for line in e["line_ids"]}
    t5_lines = set(t5_by_line)

    # ---- T6: addresses ----
    fraud_ips_foreign = {ip for e in frauds if e["kind"] in FOREIGN_IP_KINDS for ip in e["source_ips"]}
    # fraud-slow uses either the line's own address or a new one; only a new one is the fraudster's.
    fraud_ips_any = {ip for e in frauds for ip in e["source_ips"]}
    own_ips = {ip for e in frauds if e["kind"] == "fraud-pbx-hijack" for ip in e["source_ips"]}
    neg_ips = {ip: e["kind"] for e in negatives for ip in e["source_ips"]}
    t6_ips = {}
    for ev in t6:
        if ev["event"] in OPENING or ev["event"] == "applied":
            t6_ips.setdefault(ev["target"][3:], ev["_at"])
    t6_rows = Counter()
    for ip in t6_ips:
        if ip in own_ips:
            t6_rows["hijacked PBX's own address (collateral: the subscriber's PBX)"] += 1
        elif ip in fraud_ips_any:
            t6_rows["fraudster's address"] += 1
        elif ip in neg_ips:
            t6_rows[f"legitimate ({neg_ips[ip]})"] += 1
        else:
            t6_rows["legitimate (ordinary traffic)"] += 1
    ip_latencies = []
    for e in frauds:
        if e["kind"] not in FOREIGN_IP_KINDS:
            continue
        hits = [t6_ips[ip] for ip in e["source_ips"] if ip in t6_ips and t6_ips[ip] >= e["_start"] - BEFORE]
        if hits:
            ip_latencies.append((min(hits) - e["_start"]).total_seconds())

    # ---- T7: countries ----
    campaign_cc = {c for e in frauds if e["kind"] == "fraud-country-campaign" for c in e["countries"]}
    fraud_cc = {c for e in frauds for c in e["countries"]}
    t7_cc: dict[str, str] = {}
    for ev in t7:
        cc = ev["target"].split(":", 1)[1].lstrip("+")
        t7_cc.setdefault(cc, ev["event"])
    t7_events = Counter(ev["event"] for ev in t7)
    # Per country campaign: a T7 event for its country during the campaign, or one still open from before.
    t7_campaigns = {"episodes": 0, "found": 0, "open_from_before": 0, "latencies_s": []}
    for e in frauds:
        if e["kind"] != "fraud-country-campaign":
            continue
        t7_campaigns["episodes"] += 1
        ccs = set(e["countries"])
        mine = [ev for ev in t7 if ev["target"].split(":", 1)[1].lstrip("+") in ccs]
        during = [ev["_at"] for ev in mine if ev["event"] in OPENING and e["_start"] - BEFORE <= ev["_at"] <= e["_end"]]
        if during:
            t7_campaigns["found"] += 1
            t7_campaigns["latencies_s"].append((min(during) - e["_start"]).total_seconds())
            continue
        opened = [ev["_at"] for ev in mine if ev["event"] in OPENING and ev["_at"] < e["_start"]]
        closed = [ev["_at"] for ev in mine if ev["event"] in ("lifted", "expired", "rejected") and ev["_at"] < e["_start"]]
        if opened and (not closed or max(opened) > max(closed)):
            t7_campaigns["open_from_before"] += 1

    # ---- report ----
    p = print
    p("### Detection quality\n")
    p(f"Truth: {args.truth} ({len(frauds)} fraud episodes on {len(fraud_lines)} lines, {len(negatives)} hard negatives); "
      f"events: {args.events} ({len(events)} events: {dict(Counter(ev['measure'].split('.', 1)[1] + '/' + ev['event'] for ev in events))})\n")
    p("**T5 `phone.suspend-line-on-surge`: latency from an episode's first call to the first T5 event on one of its "
      "lines** (any of finding/consent-requested/applied/pending-approval; \"action\" = consent-requested, applied "
      "or pending-approval):\n")
    p("| episodes | detected | median | p90 | max | action: detected | action: median | action: p90 |")
    p("|--:|--:|--:|--:|--:|--:|--:|--:|")
    p(f"| {overall['episodes']} | {overall['detected']} | {fmt_secs(overall['median_s'])} | {fmt_secs(overall['p90_s'])} | "
      f"{fmt_secs(overall['max_s'])} | {overall_act['detected']} | {fmt_secs(overall_act['median_s'])} | {fmt_secs(overall_act['p90_s'])} |")
    p()
    by_kind: dict[str, list] = defaultdict(list)
    by_class: dict[str, list] = defaultdict(list)
    for r in rows:
        by_kind[r["kind"]].append(r)
        by_class[r["time_class"]].append(r)
    p("| fraud kind / time class | episodes | detected | median | p90 | lines detected / lines |" + (
        " charge before action |" if calls is not None else ""))
    p("|---|--:|--:|--:|--:|--:|" + ("--:|" if calls is not None else ""))
    for name, group in sorted(by_kind.items()) + sorted(by_class.items()):
        s = summary(group, "latency_s")
        ld = sum(r["lines_detected"] for r in group)
        lt = sum(r["lines"] for r in group)
        extra = ""
        if calls is not None:
            before = sum(r["charge_before_action_jpy"] for r in group)
            total = sum(r["charge_found_jpy"] for r in group)
            extra = f" {before:,} / {total:,} yen ({100 * before / max(total, 1):.0f} %) |"
        p(f"| {name} | {s['episodes']} | {s['detected']} | {fmt_secs(s['median_s'])} | {fmt_secs(s['p90_s'])} | {ld} / {lt} |{extra}")
    p()
    if calls is not None:
        per_line = [x for r in rows for x in r["per_line_action_latency_s"]]
        p(f"Per line (each line's own first fraud call to its first T5 action): {len(per_line)} lines acted on of "
          f"{sum(r['lines'] for r in rows)}; median {fmt_secs(statistics.median(per_line) if per_line else None)}, "
          f"p90 {fmt_secs(percentile(per_line, 0.9))}.\n")
    covered = [r for r in rows if not r["detected"] and r["already_suspended"] == r["lines"]]
    if covered:
        p(f"Of the undetected, {len(covered)} began on lines already suspended by an earlier alarm (their calls "
          "would have been refused; the replayed file still contains them): episodes "
          + ", ".join(str(r["episode"]) for r in covered) + ".\n")
    listed = rows if args.episodes else [r for r in rows if not r["detected"]]
    if listed:
        p("Undetected episodes:" if not args.episodes else "Episodes:")
        p()
        p("| # | kind | time class | start | lines | calls | charge (yen) | max concurrent | latency | action latency | lines already suspended |")
        p("|--:|---|---|---|--:|--:|--:|--:|--:|--:|--:|")
        for r in listed:
            p(f"| {r['episode']} | {r['kind']} | {r['time_class']} | {r['start']} | {r['lines']} | {r['calls']} | "
              f"{r['charge_jpy']:,} | {r['max_concurrent']} | {fmt_secs(r['latency_s'])} | {fmt_secs(r['action_latency_s'])} | "
              f"{r['already_suspended']} |")
        p()

    p(f"**T5 false positives**: {len(fp_lines)} lines with a T5 event outside any fraud episode of theirs "
      f"({sum(fp_events_by_kind.values())} events); {len(t5_lines & fraud_lines)} of {len(fraud_lines)} fraud lines had a T5 event.\n")
    p("| explained by | lines flagged | lines with that label | findings | suspended first (applied) | consent requested |")
    p("|---|--:|--:|--:|--:|--:|")
    kinds = sorted(set(neg_lines_by_kind) | set(fp_by_kind))
    for k in kinds:
        total = len(neg_lines_by_kind[k]) if k in neg_lines_by_kind else "–"
        c = fp_event_kinds.get(k, Counter())
        p(f"| {k} | {fp_by_kind.get(k, 0)} | {total} | {c['finding']} | {c['applied']} | {c['consent-requested']} |")
    p()

    p(f"**T6 `phone.suspend-sip-auth-from-ip`**: {len(t6_ips)} addresses acted on; fraudsters' addresses "
      f"(stolen credentials, campaigns): {len(fraud_ips_foreign)}, of which found: {len(fraud_ips_foreign & set(t6_ips))}; "
      f"median latency from episode start {fmt_secs(statistics.median(ip_latencies) if ip_latencies else None)}.\n")
    if t6_rows:
        p("| address acted on was | count |")
        p("|---|--:|")
        for k, n in t6_rows.most_common():
            p(f"| {k} | {n} |")
        p()
    p(f"**T7 `phone.restrict-country`**: countries with an event: {sorted(t7_cc) or 'none'} "
      f"(events: {dict(t7_events) or 'none'}); countries of country campaigns: {sorted(campaign_cc)}; "
      f"found: {sorted(campaign_cc & set(t7_cc))}; outside any fraud: {sorted(set(t7_cc) - fraud_cc)}. "
      f"Per campaign: {t7_campaigns['found']} of {t7_campaigns['episodes']} country campaigns had a T7 event while "
      f"they ran (median {fmt_secs(statistics.median(t7_campaigns['latencies_s']) if t7_campaigns['latencies_s'] else None)} "
      f"after their start); {t7_campaigns['open_from_before']} more began while an earlier T7 action on their "
      "country was still open.\n")

    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "t5": {"latency": overall, "action_latency": overall_act, "episodes": rows},
                    "t5_false_positive_lines": len(fp_lines),
                    "t5_false_positives_by_kind": fp_by_kind,
                    "t5_false_positive_event_kinds": {k: dict(v) for k, v in fp_event_kinds.items()},
                    "t5_false_positive_events_by_kind": dict(fp_events_by_kind),
                    "t6": {"acted_on": len(t6_ips), "fraud_ips": len(fraud_ips_foreign),
                           "found": len(fraud_ips_foreign & set(t6_ips)), "by_class": dict(t6_rows),
                           "latencies_s": ip_latencies},
                    "t7": {"countries": t7_cc, "campaign_countries": sorted(campaign_cc),
                           "found": sorted(campaign_cc & set(t7_cc)), "per_campaign": t7_campaigns},
                },
                f,
                indent=1,
                default=str,
            )


if __name__ == "__main__":
    main()
