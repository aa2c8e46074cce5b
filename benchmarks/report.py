"""
The benchmark report: a markdown file and a PNG chart.

The chart needs matplotlib; without it the markdown is still written, with a
note saying the chart was skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

Result = Dict[str, Any]

TITLES = {
    "ingest-small": "ingest-small: {conns:,} connections x {lines:,} lines x {size} bytes",
    "ingest-many": "ingest-many: {conns:,} connections opened at once x {lines:,} lines x {size} bytes",
    "idle-10k": "idle-10k: {conns:,} connections held open (then one {size}-byte line on each)",
    "chat-100": "chat-100: {conns:,} chat clients each sending {lines:,} lines of {size} bytes",
    "ingest-200": "ingest-200: {conns:,} connections x {lines:,} lines x {size} bytes, ASCII",
    "ingest-200-zh": "ingest-200-zh: {conns:,} connections x {lines:,} lines x {size} bytes of Chinese text",
    "ingest-200-latin": "ingest-200-latin: {conns:,} connections x {lines:,} lines x {size} bytes of accented Latin",
    "ingest-200-bom": "ingest-200-bom: {conns:,} connections x {lines:,} RFC 5424 lines x {size} bytes with a BOM",
    "chat-100-zh": "chat-100-zh: {conns:,} chat clients each sending {lines:,} lines of {size} bytes of Chinese text",
}

UTF8 = {"ingest-200-zh": "Chinese", "ingest-200-latin": "accented Latin", "ingest-200-bom": "RFC 5424 with a BOM"}
"""The UTF-8 ingest workloads, each beside ingest-200 (ASCII, same length)."""

METRIC = {
    "ingest-small": ("lines_per_s", "lines/s", True),
    "ingest-many": ("lines_per_s", "lines/s", True),
    "idle-10k": ("lined_rss_kib", "RSS with all connections open", False),
    "chat-100": ("deliveries_per_s", "deliveries/s", True),
    "ingest-200": ("lines_per_s", "lines/s", True),
    **{name: ("lines_per_s", "lines/s", True) for name in UTF8},
    "chat-100-zh": ("deliveries_per_s", "deliveries/s", True),
}


LAG_CAUTION_MS = 2.0
"""A paced run whose generator fell further behind its schedule than this
(p99) is reported with a caution: the generator was short of CPU."""


def pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.0f}%"


def num(value: Optional[float], digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def mb(kib: Optional[float]) -> str:
    return "-" if not kib else f"{kib / 1024:,.1f}"


def exactly(result: Result) -> str:
    if result["status"] == "skip":
        return "skipped"
    once = result.get("exactly_once")
    if once is None:
        return "n/a"
    return "yes" if once else "**NO**"


def ratio(result: Result, base: Optional[Result], workload: str) -> str:
    """
    linelogger's figure divided by this server's.
    """
    key, _, _ = METRIC[workload]
    if base is None or result["status"] != "ok" or not result.get(key) or not base.get(key):
        return "-"
    if result is base:
        return "1.00"
    return f"{base[key] / result[key]:.2f}"


def linelogger(results: List[Result]) -> Optional[Result]:
    return next((r for r in results if r["server"] == "linelogger" and r["status"] == "ok"), None)


def conns(result: Result) -> str:
    ok = result.get("conns_ok")
    return "-" if ok is None else f"{ok:,}/{result['conns']:,}"


def notes(result: Result) -> str:
    parts = [result.get("note") or ""]
    if result["status"] != "ok" and result.get("why"):
        why = str(result["why"]).replace("|", "/")
        parts.append(f"{result['status'].upper()}: {why[:160]}")
    return "; ".join(p for p in parts if p)


def runsText(result: Result) -> str:
    """
    Every run's figure, in thousands, when there were several.
    """
    runs = result.get("repeats") or []
    if len(runs) < 2:
        return "-"
    return " / ".join("FAIL" if v is None else f"{v / 1000:,.0f}k" for v in runs)


def p99Text(paced: Result) -> str:
    """
    Every paced run's p99 in ms, when there were several.
    """
    runs = paced.get("repeats") or []
    if len(runs) < 2:
        return "-"
    return " / ".join("FAIL" if v is None else f"{v:.1f}" for v in runs)


def ingestTable(workload: str, results: List[Result]) -> List[str]:
    base = linelogger(results)
    rows = [
        "| Server | Exactly once | Time (s) | Lines/s | MB/s | Peak RSS (MB) | Conns | Listen drops "
        "| Server CPU (s) | Server CPU in the run (s) | Generator CPU | Lines/s, all runs | linelogger ÷ this "
        "| Notes |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in results:
        drops = (r.get("listen_drops") or {}).get("ListenDrops")
        genCpu = r.get("gen_cpu_pct")
        rows.append(
            f"| {r['label']} | {exactly(r)} | {num(r.get('elapsed_s'), 3)} | {num(r.get('lines_per_s'))} "
            f"| {num(r.get('mb_per_s'), 1)} | {mb(r.get('peak_rss_kib'))} | {conns(r)} | {num(drops)} "
            f"| {num(r.get('server_cpu_s'), 2)} | {num(r.get('server_cpu_measured_s'), 2)} "
            f"| {'-' if genCpu is None else f'{genCpu:.0f}%'} "
            f"| {runsText(r)} | {ratio(r, base, workload)} | {notes(r)} |"
        )
    return rows


def idleTable(workload: str, results: List[Result]) -> List[str]:
    base = linelogger(results)
    rows = [
        "| Server | Held, idle | Held, after a line each | RSS, all open (MB) | Peak RSS (MB) | Processes "
        "| Connect time (s) | Exactly once (1 line each) | linelogger ÷ this | Notes |",
        "|---|--:|--:|--:|--:|--:|--:|---|--:|---|",
    ]

    def held(value: Optional[int], total: int) -> str:
        return "-" if value is None else f"{value:,}/{total:,}"

    for r in results:
        rows.append(
            f"| {r['label']} | {held(r.get('held_server'), r['conns'])} | {held(r.get('lined_server'), r['conns'])} "
            f"| {mb(r.get('lined_rss_kib'))} | {mb(r.get('peak_rss_kib'))} | {num(r.get('peak_procs'))} "
            f"| {num(r.get('connect_s'), 2)} | {exactly(r)} | {ratio(r, base, workload)} | {notes(r)} |"
        )
    return rows


def chatTable(workload: str, results: List[Result]) -> List[str]:
    base = linelogger(results)
    rows = [
        "Saturated: every client sends all its lines at once.",
        "",
        "| Server | Exactly once | Deliveries | Time (s) | Deliveries/s | p50 (ms) | p99 (ms) | Peak RSS (MB) "
        "| Generator CPU | Deliveries/s, all runs | linelogger ÷ this | Notes |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in results:
        genCpu = r.get("gen_cpu_pct")
        rows.append(
            f"| {r['label']} | {exactly(r)} | {num(r.get('deliveries'))} | {num(r.get('elapsed_s'), 3)} "
            f"| {num(r.get('deliveries_per_s'))} | {num(r.get('p50_ms'), 1)} | {num(r.get('p99_ms'), 1)} "
            f"| {mb(r.get('peak_rss_kib'))} | {'-' if genCpu is None else f'{genCpu:.0f}%'} "
            f"| {runsText(r)} | {ratio(r, base, workload)} | {notes(r)} |"
        )
    paced = [(r, r["paced"]) for r in results if r.get("paced")]
    if paced:
        rows += ["", *pacedTable(paced)]
    return rows


def atHalfLoad(paced: Result) -> bool:
    """
    Whether a paced run offered half its server's saturated rate (rather
    than a rate given with C{--paced-rate}).
    """
    offered = paced.get("offered_deliveries_per_s") or 0.0
    saturated = paced.get("saturated_deliveries_per_s") or 0.0
    return abs(offered - saturated / 2) <= 0.01 * offered


def pacedTable(paced: List[Tuple[Result, Result]]) -> List[str]:
    """
    Chat at half load: each server paced at half its own saturated rate
    (or, with C{--paced-rate}, all at one rate).
    """
    seconds = next((p.get("schedule_s") for _, p in paced if p.get("schedule_s")), None)
    ran = [p for _, p in paced if p["status"] != "skip"]
    half = all(atHalfLoad(p) for p in ran)
    offer = (
        "half the deliveries/s it reached saturated"
        if half
        else f"{num(ran[0].get('offered_deliveries_per_s'))} deliveries/s, the rate given with --paced-rate"
    )
    rows = [
        ("At half load" if half else "Paced")
        + ": each server afresh, its clients paced (each the same steady rate, staggered) to offer "
        + offer
        + (f", for about {seconds:.0f} s" if seconds and seconds >= 1 else "")
        + ". Latency is from a line's send to its delivery; achieved deliveries/s, over the time from the first "
        "line sent to the last delivery. 'Schedule lag' is how late the generator sent lines against its "
        "schedule: more than a couple of ms means the generator itself was short of CPU, and so also read "
        "late, and the latencies overstate the server's. 'Server CPU' is the server's CPU time "
        "while the clock ran, as a share of one core; 'Generator CPU', the generator's (the two share "
        "the machine's cores).",
        "",
        "| Server | Exactly once | Offered deliveries/s | Lines/s per client | Lines per client | Deliveries "
        "| Achieved deliveries/s | p50 (ms) | p99 (ms) | p99, all runs (ms) | Max (ms) | Schedule lag p99 / max (ms) "
        "| Peak RSS (MB) | Server CPU | Generator CPU | Notes |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r, p in paced:
        if p["status"] == "skip":
            rows.append(
                f"| {r['label']} | skipped | - | - | - | - | - | - | - | - | - | - | - | - | - | {p.get('why')} |"
            )
            continue
        genCpu = p.get("gen_cpu_pct")
        serverCpu = p.get("server_cpu_pct")
        lag = f"{num(p.get('lag_p99_ms'), 1)} / {num(p.get('lag_max_ms'), 1)}"
        rows.append(
            f"| {r['label']} | {exactly(p)} | {num(p.get('offered_deliveries_per_s'))} | {num(p.get('rate'), 1)} "
            f"| {num(p.get('lines'))} | {num(p.get('deliveries'))} | {num(p.get('deliveries_per_s'))} "
            f"| {num(p.get('p50_ms'), 2)} | {num(p.get('p99_ms'), 2)} | {p99Text(p)} "
            f"| {num(p.get('max_ms'), 1)} | {lag} "
            f"| {mb(p.get('peak_rss_kib'))} | {'-' if serverCpu is None else f'{serverCpu:.0f}%'} "
            f"| {'-' if genCpu is None else f'{genCpu:.0f}%'} | {notes(p)} |"
        )
    return rows


TABLES = {
    "ingest-small": ingestTable,
    "ingest-many": ingestTable,
    "idle-10k": idleTable,
    "chat-100": chatTable,
    "ingest-200": ingestTable,
    **{name: ingestTable for name in UTF8},
    "chat-100-zh": chatTable,
}


def median(values: List[float]) -> float:
    """
    The median of C{values} (the lower middle one of an even count).
    """
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


def medianCpu(result: Result) -> Optional[float]:
    """
    A result's median server CPU over its runs, or that of the run it
    reports when the runs' are not known.
    """
    cpus = [c for c in result.get("cpu_repeats") or [] if c is not None]
    return median(cpus) if cpus else result.get("server_cpu_measured_s")


def roundRatios(mine: Result, theirs: Result) -> List[float]:
    """
    C{mine}'s lines/s divided by C{theirs}' run by run, the runs of one
    round (which took turns) together.
    """
    return [a / b for a, b in zip(mine.get("repeats") or [], theirs.get("repeats") or []) if a and b]


def utf8Lines(results: List[Result]) -> List[str]:
    """
    The UTF-8 workloads beside the ASCII ones of the same line length, with
    the targets of issue #13: linelogger's server CPU at most 1.5 times
    ASCII's, its lines/s at least 1.2 times rsyslog's on the same input, and
    a Chinese chat room at least 0.8 times the deliveries/s of an ASCII one.
    """

    def find(workload: str, server: str) -> Optional[Result]:
        found = next((r for r in results if r["workload"] == workload and r["server"] == server), None)
        return found if found is not None and found["status"] == "ok" else None

    rows: List[str] = []
    verdicts: List[str] = []
    for server in ("linelogger", "linelogger-json", "rsyslog"):
        ascii = find("ingest-200", server)
        for workload, what in [("ingest-200", "ASCII"), *UTF8.items()]:
            mine = find(workload, server)
            if mine is None:
                continue
            cpu = medianCpu(mine)
            base = medianCpu(ascii) if ascii else None
            rsyslog = find(workload, "rsyslog")
            versus = rounds = cpuVersus = "-"
            if rsyslog and rsyslog is not mine and rsyslog.get("lines_per_s") and mine.get("lines_per_s"):
                versus = f"{mine['lines_per_s'] / rsyslog['lines_per_s']:.2f}"
                ratios = roundRatios(mine, rsyslog)
                if ratios:
                    rounds = f"{median(ratios):.2f} ({' / '.join(f'{r:.2f}' for r in ratios)})"
                theirs = medianCpu(rsyslog)
                if cpu and theirs:
                    cpuVersus = f"{theirs / cpu:.2f}"
            cpuRatio = f"{cpu / base:.2f}" if cpu and base else "-"
            rows.append(
                f"| {what} | {mine['label']} | {num(mine.get('lines_per_s'))} | {num(cpu, 2)} | {cpuRatio} "
                f"| {versus} | {rounds} | {cpuVersus} |"
            )
            if server.startswith("linelogger") and workload != "ingest-200":
                if cpu and base:
                    verdicts.append(
                        f"- {workload}, {mine['label']}: server CPU at most 1.5× ASCII's: "
                        f"{'**met**' if cpu <= 1.5 * base else '**not met**'} ({cpu / base:.2f}×)"
                    )
                if versus != "-":
                    verdicts.append(
                        f"- {workload}, {mine['label']}: at least 1.2× rsyslog's lines/s: "
                        f"{'**met**' if float(versus) >= 1.2 else '**not met**'} ({versus}×"
                        + (f"; round by round, median {rounds.split()[0]}×" if rounds != "-" else "")
                        + (f"; rsyslog's CPU per line {cpuVersus}× this one's" if cpuVersus != "-" else "")
                        + ")"
                    )
    if rows:
        rows = [
            "Server CPU: the median over the runs of the server's CPU seconds from the first connect to the "
            "last record.  Round by round: the servers take turns, and each round's lines/s is divided by "
            "rsyslog's in the same round (the median, then each round), which a busy spell of a shared "
            "machine disturbs less than a ratio of medians.",
            "",
            "| Lines | Server | Lines/s | Server CPU in the run (s) | CPU ÷ ASCII's | Lines/s ÷ rsyslog's "
            "| Lines/s ÷ rsyslog's, round by round | rsyslog's CPU ÷ this |",
            "|---|---|--:|--:|--:|--:|--:|--:|",
            *rows,
        ]
    chat, chatZh = find("chat-100", "linelogger"), find("chat-100-zh", "linelogger")
    if chat and chatZh and chat.get("deliveries_per_s") and chatZh.get("deliveries_per_s"):
        factor = chatZh["deliveries_per_s"] / chat["deliveries_per_s"]
        verdicts.append(
            f"- chat-100-zh, linelogger: at least 0.8× the deliveries/s of chat-100 (ASCII): "
            f"{'**met**' if factor >= 0.8 else '**not met**'} ({chatZh['deliveries_per_s']:,.0f} against "
            f"{chat['deliveries_per_s']:,.0f}, {factor:.2f}×)"
        )
    return rows + ([""] if rows and verdicts else []) + verdicts


def comparison(workload: str, results: List[Result]) -> Optional[str]:
    """
    One sentence: linelogger's figure divided by each other server's.
    """
    base = linelogger(results)
    key, unit, higherBetter = METRIC[workload]
    if base is None or not base.get(key):
        return None
    parts = []
    for r in results:
        if r is base or r["server"] == "discard" or r["status"] != "ok" or not r.get(key):
            continue
        if r["server"].startswith("linelogger"):
            continue  # a variant of linelogger: see the table
        parts.append(f"{base[key] / r[key]:.2f}× {r['label']}")
    if not parts:
        return None
    better = "higher" if higherBetter else "lower"
    return (
        f"linelogger's {unit} divided by each other server's that passed ({better} is better for linelogger): "
        + ", ".join(parts)
        + "."
    )


def generatorLines(info: Dict[str, Any], results: List[Result]) -> List[str]:
    lines = []
    for workload in ("ingest-small", "ingest-many"):
        here = [r for r in results if r["workload"] == workload]
        discard = next((r for r in here if r["server"] == "discard"), None)
        servers = [r for r in here if r["server"] != "discard" and r.get("lines_per_s")]
        if discard is None or not discard.get("lines_per_s"):
            continue
        text = (
            f"- {workload}: the generator alone, against the discard server, sent "
            f"{num(discard['lines_per_s'])} lines/s ({num(discard.get('mb_per_s'), 1)} MB/s)"
        )
        if servers:
            fastest = max(servers, key=lambda r: r["lines_per_s"])
            text += (
                f"; the fastest server measured, {fastest['label']}, recorded {num(fastest['lines_per_s'])} "
                f"lines/s: the generator is {discard['lines_per_s'] / fastest['lines_per_s']:.1f}× faster"
            )
        lines.append(text + ".")
    capacity = info.get("chat_capacity")
    chats = [r for r in results if r["workload"] == "chat-100" and r.get("deliveries_per_s")]
    if capacity and capacity.get("rate"):
        text = (
            "- chat-100: while the clock runs, the generator's chat clients only keep what they receive, with "
            "its arrival time, and count its line ends once enough bytes have come; every line is checked after "
            "the clock stops. Fed from memory in 64 KB chunks, "
            f"that bookkeeping takes in {num(capacity['rate'])} deliveries/s (the check afterwards, "
            f"{num(capacity.get('analyze_rate'))}/s)"
        )
        if chats:
            fastest = max(chats, key=lambda r: r["deliveries_per_s"])
            text += (
                f"; the fastest chat server, {fastest['label']}, delivered {num(fastest['deliveries_per_s'])}/s: "
                f"{capacity['rate'] / fastest['deliveries_per_s']:.1f}× headroom for the bookkeeping"
            )
        lines.append(
            text + ". Its sockets cost more than that: the generator's own CPU use during each run is in the "
            "tables. The paced runs cost it most (every line sent on its own, deliveries received in small "
            "chunks, on the same cores as the server): their schedule lag tells when it fell behind."
        )
    return lines


def targets(results: List[Result]) -> List[str]:
    """
    linelogger against the targets of issue #4, where this run measured them:
    with its defaults (the headline), with --no-connection-log, and with
    --connection-log-rate 0.
    """

    def find(workload: str, server: str) -> Optional[Result]:
        return next((r for r in results if r["workload"] == workload and r["server"] == server), None)

    def verdict(met: bool) -> str:
        return "**met**" if met else "**not met**"

    variants = [
        ("linelogger", "linelogger (defaults)"),
        ("linelogger-quiet", "linelogger --no-connection-log"),
        ("linelogger-every", "linelogger --connection-log-rate 0"),
    ]
    out = []
    for workload in ("ingest-small", "ingest-many"):
        theirs = find(workload, "rsyslog")
        for server, label in variants:
            mine = find(workload, server)
            if mine is None or theirs is None:
                continue
            if mine["status"] == "ok" and theirs["status"] == "ok":
                factor = mine["lines_per_s"] / theirs["lines_per_s"]
                out.append(
                    f"- {workload}, {label} at least as fast as rsyslog's imtcp+omfile: {verdict(factor >= 1)} "
                    f"({factor:.2f}× its lines/s: {num(mine['lines_per_s'])} against {num(theirs['lines_per_s'])})"
                )
            else:
                out.append(
                    f"- {workload}, {label} at least as fast as rsyslog: not measured ({server} {mine['status']}, "
                    f"rsyslog {theirs['status']})"
                )
    for server, label in variants:
        mine = find("ingest-many", server)
        if mine is not None:
            met = mine["status"] == "ok" and bool(mine.get("exactly_once")) and mine.get("conns_ok") == mine["conns"]
            out.append(
                f"- ingest-many, {label}: every one of the {mine['conns']:,} connections accepted and every line "
                f"recorded: {verdict(met)} ({conns(mine)} connections, exactly once: {exactly(mine)})"
            )
    for server, label in variants:
        mine = find("idle-10k", server)
        if mine is not None:
            held = mine.get("lined_server")
            rss = mine.get("lined_rss_kib") or 0
            out.append(
                f"- idle-10k, {label}: all {mine['conns']:,} connections open: {verdict(held == mine['conns'])} "
                f"({'-' if held is None else f'{held:,}'} held); resident memory at most 50 MB: "
                f"{verdict(0 < rss <= 50 * 1024)} ({mb(rss)} MB, MB = 2^20 bytes here)"
            )
    mine, theirs = find("chat-100", "linelogger"), find("chat-100", "chatserver")
    if mine is not None and theirs is not None:
        if mine.get("deliveries_per_s") and theirs.get("deliveries_per_s"):
            factor = mine["deliveries_per_s"] / theirs["deliveries_per_s"]
            out.append(
                f"- chat-100, fan-out at least 2× Twisted's chatserver.py: {verdict(factor >= 2)} "
                f"({factor:.2f}× its deliveries/s: {num(mine['deliveries_per_s'])} against "
                f"{num(theirs['deliveries_per_s'])})"
            )
        else:
            out.append(
                f"- chat-100, fan-out at least 2× Twisted's chatserver.py: not measured (linelogger "
                f"{mine['status']}, chatserver.py {theirs['status']})"
            )
    paced = (mine or {}).get("paced")
    if mine is not None and paced:
        if paced["status"] == "ok" and paced.get("p99_ms") is not None:
            half = atHalfLoad(paced)
            text = (
                "- chat-100 at half load, p99 delivery latency under 20 ms: "
                + (verdict(paced["p99_ms"] < 20) if half else "not measured at half load (--paced-rate)")
                + " "
                f"(p99 {paced['p99_ms']:.2f} ms"
                + (
                    f", the median of {len(paced['repeats'])} runs: {p99Text(paced)} ms"
                    if p99Text(paced) != "-"
                    else ""
                )
                + f"; p50 {paced['p50_ms']:.2f} ms, at "
                f"{num(paced.get('deliveries_per_s'))} deliveries/s achieved of "
                f"{num(paced.get('offered_deliveries_per_s'))} offered, "
                + ("half of" if half else "against")
                + f" linelogger's saturated {num(paced.get('saturated_deliveries_per_s'))}; linelogger used "
                f"{pct(paced.get('server_cpu_pct'))} of a core, the generator {pct(paced.get('gen_cpu_pct'))})"
            )
            lag = paced.get("lag_p99_ms") or 0.0
            if lag > LAG_CAUTION_MS:
                text += (
                    f". Caution: the generator ran {lag:.1f} ms behind its schedule at p99: it was short of CPU "
                    "itself, so it also read late, and part of these latencies is the measurement's"
                )
            out.append(text)
        else:
            out.append(
                f"- chat-100 at half load, p99 delivery latency under 20 ms: not measured ({paced['status']}: "
                f"{paced.get('why')})"
            )
    return out


def markdown(info: Dict[str, Any], results: List[Result], chartNote: Optional[str]) -> str:
    m = info["machine"]
    v = info["versions"]
    chat = info["sizes"].get("chat-100") or {"conns": 100, "lines": 50, "size": 80}
    chatConns = chat["conns"]
    # What one reader is owed by the burst: every other client's lines, each
    # prefixed by the sender's nickname ('<guestN> ', about 9 bytes).
    owedBytes = (chat["conns"] - 1) * chat["lines"] * (chat["size"] + 9)
    owed = (
        f"{owedBytes / 1000:,.0f} KB ({chat['conns'] - 1} senders × {chat['lines']} lines × ~{chat['size'] + 9} bytes)"
    )
    out = [
        "# linelogger benchmarks",
        "",
        f"Generated by the benchmark suite (`benchmarks/`) on {info['date']} in {info['duration_s']:.0f} s"
        + (" (quick: tiny sizes, not comparable)" if info.get("quick") else "")
        + ". Command, from the root of the checkout:",
        "",
        "```",
        info["command"],
        "```",
        "",
        "## Machine and versions",
        "",
        f"- {m['nproc']} cores: {m['cpu']}; {m['memory']} of memory; Linux {m['kernel']}",
        f"- Python {v['python']}, Twisted {v['twisted'] or 'not installed'}, "
        f"rsyslog {v['rsyslog'] or 'not installed (its rows are skipped)'}",
        f"- open-file limit of the suite: {info['nofile'][0]} (soft), {info['nofile'][1]} (hard); "
        "the generator and each server raise theirs to what the workload needs",
        "",
        "## How it was measured",
        "",
        "- Each server runs as a subprocess listening on a free port on 127.0.0.1, one at a time; the load "
        "generator (`benchmarks/loadgen.py`) is another process: non-blocking sockets on one `selectors` loop.",
        "- linelogger runs as installed without the tls extra: `twistd -n linelogger ...` started through "
        "`python -c \"import sys; sys.modules['OpenSSL'] = None; sys.argv[0] = 'twistd'; from "
        'twisted.scripts.twistd import run; run()"`, so that pyOpenSSL, which this development environment '
        "has for the TLS tests and which Twisted's reactor would import eagerly (about 13 MB of resident "
        "memory), is not loaded. Only linelogger's command is started so; the other Twisted servers run as "
        "they are. `--servers ...,linelogger-openssl` adds a row with pyOpenSSL loaded, as in a development "
        "checkout"
        + (" (this run did: see its rows)" if any(r["server"] == "linelogger-openssl" for r in results) else "")
        + ".",
        "- The row 'linelogger' is linelogger with its defaults: the headline. By default it logs connections "
        "('Got connection from', 'disconnected') one by one up to 20 per second and sums up the rest in one "
        "log event a second (`--connection-log-rate`); through twistd's log observer each event costs 50-100 µs, "
        "a large share of the time when clients connect briefly by the thousand. "
        "'linelogger --no-connection-log' logs no connections at all (ingest and idle workloads); "
        "'linelogger --connection-log-rate 0' logs every connection one by one, however many (ingest-many).",
        "- Every line carries a unique id, `cNNNNN-SSSSSS` (connection, sequence number), padded with `x` to the "
        "line size (LF included; CRLF in chat). After each run the server's output file is read back: every id "
        "must appear exactly once, intact. Chat clients check that they receive every other client's lines "
        "exactly once.",
        "- Ingest: timed from the first connect until the last record is in the output file (the generator "
        "counts the file's lines as they land). Lines/s and MB/s count payload lines and bytes. ingest-small "
        "connects its connections one at a time, 2 ms apart, then sends on all of them at once (a burst of "
        "connects would cost the servers with `listen(5)` a dropped SYN and a 1 s retry: that is what "
        "ingest-many measures); ingest-many starts all its connects at once; each connection sends its lines, "
        "half-closes, and reads until the server closes.",
        f"- Ingest and chat: each server is started afresh and measured {info.get('repeat', 1)} time(s); the "
        "median run is reported, and every run's figure is listed. A run that fails is reported instead.",
        "- Memory: the sum of VmRSS over the server's whole process tree, sampled every 50 ms; the peak is "
        "reported. For the forking server this counts shared pages once per process, an overstatement.",
        "- Connections held (idle-10k): established connections to the server's port that the server has "
        "accepted (from /proc/net/tcp): once all 10,000 clients are connected (at most 1,000 connects in "
        "flight) and the count has stopped growing ('idle'), and again once each client has sent one line "
        "and its record is in the file (or 15 s went by). 'RSS, all open' is taken then.",
        "- 'Listen drops' is the kernel's ListenDrops counter during the run (all runs of the machine, so "
        "approximate): handshakes dropped because the server's listen queue was full. Linux then drops the "
        "SYN (the client retries 1 s later, then 3 s, ...) or, with SYN cookies on (the default), answers "
        "it but drops the final ACK: the client believes it is connected and sends, and the server answers "
        "data it has no connection for with a reset. That is how the servers with small backlogs lose "
        "whole connections in ingest-many: the client sees 'Connection reset by peer'.",
        f"- Chat: linelogger runs with `--chat --flood-rate {info['flood']['rate']} --flood-burst "
        f"{info['flood']['burst']} --sendq {info['flood'].get('sendq')}`. The flood options take flood control "
        "out of the way (its defaults, 2 lines/s with bursts of 5, would pace 50 lines over 23 s). With flood "
        f"control off, the burst owes each reader about {owed} at once, "
        "more than the default `--sendq 262144`: a client owed more than that many unsent bytes is "
        "disconnected as a slow consumer, which linelogger then does, correctly, to clients that are simply "
        "slower to be scheduled than the rest, and the run fails. That default is meant for flood-controlled "
        "rooms, where no reader is ever owed that much at once; the benchmark raises it to 8 MiB. Its other "
        "options keep their defaults. The clients first connect and exchange one hello each (a barrier, not "
        "timed); then all send their lines at once. Time: from the first line sent to the last delivery; "
        "latency: from each line's send (when the kernel took its last byte) to its delivery to each other "
        "client. The generator's chat clients set TCP_NODELAY, so that each line leaves when it is sent, as a "
        "person's would; the servers keep their own setting (linelogger sets TCP_NODELAY on chat connections; "
        "chatserver.py and the select() relay do not), so what Nagle's algorithm does on their side, holding a "
        "small write to a client until that client acknowledges the last one, is part of their latency.",
        f"- Chat at half load: after its saturated runs, each chat server is started afresh and its {chatConns} "
        "clients "
        "send at a steady rate, the same for every client and staggered between them, chosen so that the "
        "deliveries offered per second are half the median deliveries/s that same server reached saturated "
        f"in this run; the run lasts about {info.get('paced_s', 0):g} s (the generator keeps its schedule on a "
        "1 ms tick, and reports how late it ran). Same checks: every client must receive every other "
        "client's lines exactly once; p50 and p99 are over every delivery. The paced run is repeated as "
        f"often as the others ({info.get('repeat', 1)} time(s), each server afresh): the run with the median "
        "p99 is reported, and every run's p99 is listed.",
        f"- Each server has {info['timeout_s']:.0f} s per workload; one that does not finish is marked FAIL.",
        "",
    ]
    goals = targets(results)
    if goals:
        out += ["## linelogger against the targets of issue #4", ""]
        if info.get("quick"):
            out += ["(A quick run: tiny sizes, so these say nothing about the targets.)", ""]
        out += [*goals, ""]
    utf8 = utf8Lines(results)
    if utf8:
        out += ["## UTF-8 beside ASCII: the targets of issue #13", ""]
        if info.get("quick"):
            out += ["(A quick run: tiny sizes, so these say nothing about the targets.)", ""]
        out += [*utf8, ""]
    gen = generatorLines(info, results)
    if gen:
        out += ["## The load generator", "", *gen, ""]
    for workload, sizes in info["sizes"].items():
        here = [r for r in results if r["workload"] == workload]
        if not here:
            continue
        out += [f"## {TITLES[workload].format(**sizes)}", "", *TABLES[workload](workload, here), ""]
        sentence = comparison(workload, here)
        if sentence:
            out += [sentence, ""]
    problems = [(r, "") for r in results if r["status"] != "ok"]
    problems += [(r["paced"], " at half load") for r in results if r.get("paced") and r["paced"]["status"] != "ok"]
    if problems:
        out += ["## Failures and skips", ""]
        for r, what in problems:
            out.append(f"- {r.get('workload', 'chat-100')}{what}, {r.get('label', '')}: {r['status']}: {r.get('why')}")
            for line in r.get("server_log") or []:
                quoted = line.replace("`", "'")
                out.append(f"  - server log: `{quoted}`")
        out.append("")
    logged = logNotes(results)
    if logged:
        out += ["## linelogger's own log", "", *logged, ""]
    out += ["## Chart", ""]
    out += [chartNote, ""] if chartNote else ["![benchmarks](benchmarks.png)", ""]
    return "\n".join(out)


def logNotes(results: List[Result]) -> List[str]:
    """
    What linelogger's log said above 'info', row by row (all repeats).
    """
    rows = [(r, "") for r in results] + [(r["paced"], " at half load") for r in results if r.get("paced")]
    rows = [(r, what) for r, what in rows if "log_notable" in r]
    if not rows:
        return []
    out = [
        "Every line of linelogger's twistd log (rotated files too) that warns or reports an error, over all "
        "the runs of each row, numbers shown as N:",
        "",
    ]
    quiet = 0
    for r, what in rows:
        seen = r["log_notable"]
        if not seen:
            quiet += 1
            continue
        kinds = "; ".join(f"`{line.replace('`', chr(39))}` ({n:,}×)" for line, n in sorted(seen.items()))
        out.append(f"- {r.get('workload')}{what}, {r.get('label')}: {kinds}")
    if quiet == len(rows):
        out.append("- nothing, in any run.")
    elif quiet:
        out.append(f"- nothing in the {quiet} other rows.")
    if any("Output is behind" in line for r, _ in rows for line in r["log_notable"]):
        out += [
            "",
            "'Output is behind ... pausing input' is linelogger's backpressure at work, not a fault: more than "
            "`--buffer` bytes (8 MiB by default) of records were waiting for the writer thread, so it stopped "
            "reading from its clients until they were written; no line is lost.",
        ]
    return out


def axisLabel(x: float, _: object = None) -> str:
    if x >= 1e6:
        return f"{x / 1e6:g}M"
    if x >= 1e4:
        return f"{x / 1e3:g}k"
    return f"{x:g}"


def chart(path: Path, info: Dict[str, Any], results: List[Result]) -> Optional[str]:
    """
    Draw the chart; return why it was not drawn, or C{None}.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter
    except ImportError:
        return "The chart was skipped: matplotlib is not installed (pip install matplotlib)."
    panels: List[Tuple[str, List[Result], str]] = []
    for workload in info["sizes"]:
        here = [r for r in results if r["workload"] == workload and r["status"] != "skip"]
        if not here:
            continue
        key, unit, higherBetter = METRIC[workload]
        unit = unit if not key.endswith("kib") else "RSS (MB), all open"
        better = "higher is better" if higherBetter else "lower is better"
        panels.append((f"{workload}: {unit} ({better})", here, key))
        paced = [
            {**r["paced"], "label": r["label"], "server": r["server"]}
            for r in here
            if r.get("paced") and r["paced"]["status"] != "skip"
        ]
        if paced:
            panels.append((f"{workload} at half load: p99 latency, ms (lower is better)", paced, "p99_ms"))
    if not panels:
        return "The chart was skipped: nothing was measured."
    cols = 2 if len(panels) > 1 else 1
    rowsN = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rowsN, cols, figsize=(7 * cols, 3.6 * rowsN), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, (title, here, key) in zip(axes.flat, panels):
        labels, values, colors, texts = [], [], [], []
        for r in here:
            value = r.get(key) or 0.0
            if key.endswith("kib"):
                value /= 1024
            labels.append(r["label"])
            values.append(value)
            ok = r["status"] == "ok"
            if r["server"] == "linelogger":
                colors.append("#d62728")
            elif r["server"].startswith("linelogger"):
                colors.append("#f4a3a3" if ok else "#bbbbbb")
            elif r["server"] == "discard":
                colors.append("#7f7f7f")
            else:
                colors.append("#1f77b4" if ok else "#bbbbbb")
            texts.append(f"{value:,.1f}" if value < 100 else f"{value:,.0f}")
            if not ok:
                texts[-1] = texts[-1] + " (FAIL)" if value else "FAIL"
        ys = range(len(labels))
        ax.barh(list(ys), values, color=colors)
        ax.set_yticks(list(ys))
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        for y, value, text in zip(ys, values, texts):
            ax.text(value, y, " " + text, va="center", fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.margins(x=0.25)
        ax.tick_params(axis="x", labelsize=7)
        ax.xaxis.set_major_formatter(FuncFormatter(axisLabel))
    m = info["machine"]
    fig.suptitle(
        f"linelogger benchmarks: {m['nproc']} cores, {m['cpu']}; Python {info['versions']['python']}, "
        f"Twisted {info['versions']['twisted']}" + (" (quick run)" if info.get("quick") else ""),
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def write(out: Path, info: Dict[str, Any], results: List[Result]) -> Tuple[Path, Optional[str]]:
    """
    Write C{benchmarks.md} and C{benchmarks.png} into C{out}.
    """
    chartNote = chart(out / "benchmarks.png", info, results)
    path = out / "benchmarks.md"
    path.write_text(markdown(info, results, chartNote))
    return path, chartNote


def oneLine(r: Result) -> str:
    """
    A run, in one line, for the console.
    """
    bits = [r["status"].upper()]
    for key, fmt in (
        ("elapsed_s", "{:.2f} s"),
        ("lines_per_s", "{:,.0f} lines/s"),
        ("deliveries_per_s", "{:,.0f} deliveries/s"),
        ("offered_deliveries_per_s", "{:,.0f} deliveries/s offered"),
        ("p50_ms", "p50 {:.1f} ms"),
        ("p99_ms", "p99 {:.1f} ms"),
        ("lag_p99_ms", "schedule lag p99 {:.1f} ms"),
        ("held_server", "held idle {:,}"),
        ("lined_server", "held after a line {:,}"),
        ("lined_rss_kib", "RSS all open {:,.0f} KiB"),
        ("peak_rss_kib", "peak RSS {:,.0f} KiB"),
    ):
        if r.get(key) is not None:
            bits.append(fmt.format(r[key]))
    if r.get("exactly_once") is not None:
        bits.append("exactly once" if r["exactly_once"] else "NOT exactly once")
    if r.get("why"):
        bits.append(f"({r['why']})")
    return ", ".join(bits)


def summary(info: Dict[str, Any], results: List[Result]) -> str:
    """
    The tables, for the console.
    """
    out = []
    out += generatorLines(info, results)
    for workload, sizes in info["sizes"].items():
        here = [r for r in results if r["workload"] == workload]
        if here:
            out += ["", TITLES[workload].format(**sizes), *TABLES[workload](workload, here)]
            sentence = comparison(workload, here)
            if sentence:
                out.append(sentence)
    return "\n".join(out)
