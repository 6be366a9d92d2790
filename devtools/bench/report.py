"""The benchmark results as a markdown table, each goal beside its figure."""

from __future__ import annotations

from typing import Any


def _goal(ok: bool) -> str:
    return "met" if ok else "**missed**"


def markdown(r: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str, str]] = []
    b = r.get("broadcast")
    if b:
        low, high = b.get("ratio_to_bare_spread", [b["ratio_to_bare"]] * 2)
        rows.append(
            (
                "broadcast throughput",
                f"{b['longtasks_items_per_s']:,} items/s vs bare {b['bare_items_per_s']:,}"
                f" ({b['ratio_to_bare']:.2f}x, median of {b.get('rounds', 1)} alternating"
                f" rounds, spread {low:.2f}-{high:.2f}x) and seed {b['seed_items_per_s']:,}"
                f" ({b['ratio_to_seed']:.0f}x), each first to last provider accept"
                f" (longtasks end to end, POST to completed:"
                f" {b['longtasks_end_to_end_items_per_s']:,}); {b['recipients']:,} recipients,"
                f" {b['provider_latency_ms']:.0f} ms latency, concurrency {b['concurrency']}",
                ">= 0.8x bare, >= 20x seed",
                _goal(b["ratio_to_bare"] >= 0.8 and b["ratio_to_seed"] >= 20),
            )
        )
    c = r.get("cancel")
    if c:
        rows.append(
            (
                "cancel -> last provider send",
                f"p50 {c['p50_s']} s, p95 {c['p95_s']} s ({c['runs']} runs)",
                "p95 < 1 s",
                _goal(c["p95_s"] < 1),
            )
        )
    p = r.get("progress_lag")
    if p:
        rows.append(
            (
                "progress lag (provider -> REST)",
                f"p95 {p['p95_s']} s, max {p['max_s']} s",
                "p95 < 1 s",
                _goal(p["p95_s"] < 1),
            )
        )
    rl = r.get("rate_limit")
    if rl:
        rows.append(
            (
                "rate limit",
                f"{rl['achieved_per_s']}/s of {rl['limit_per_s']}/s"
                f" ({rl['ratio']:.0%}), {rl['provider_429']} 429s, {rl['workers']} workers",
                ">= 95%, zero 429",
                _goal(rl["ratio"] >= 0.95 and rl["provider_429"] == 0),
            )
        )
    pz = r.get("pause")
    if pz:
        rows.append(
            (
                "pause -> last provider send; resume -> next",
                f"stop p50 {pz['stop_p50_s']} s, p95 {pz['stop_p95_s']} s; restart p50"
                f" {pz['restart_p50_s']} s, p95 {pz['restart_p95_s']} s; {pz['duplicates']}"
                f" duplicates ({pz['runs']} runs of {pz['recipients']:,})",
                "stop p95 < 1 s, 0 duplicates",
                _goal(pz["stop_p95_s"] < 1 and pz["duplicates"] == 0),
            )
        )
    e = r.get("eta")
    if e:
        points = ", ".join(
            f"{c['done_pct']:.0f}%: {c['eta_s']} s vs {c['actual_remaining_s']} s"
            for c in e["checkpoints"]
        )
        rows.append(
            (
                "ETA accuracy (paced broadcast)",
                f"{points} (max error {e['max_error_pct']}%); {e['recipients']:,} recipients"
                f" at {e['messages_per_s']:.0f}/s",
                "within 20% at 10/30/60%",
                _goal(e["max_error_pct"] <= 20),
            )
        )
    i = r.get("audience_intake")
    if i:
        rows.append(
            (
                f"CSV upload and import, {i['rows']:,} rows ({i['file_mb']} MB)",
                f"202 after {i['answered_202_s']} s, API RSS {i['api_peak_rss_mb']:.0f} MB peak"
                f" ({i['api_rss_idle_mb']:.0f} idle); import {i['import_rows_per_s']:,.0f}"
                f" rows/s ({i['import_s']} s) vs one bare COPY of the file"
                f" {i['bare_copy_rows_per_s']:,.0f} rows/s; {i['members']:,} members"
                + (
                    f"; import CPU {i['import_cpu_us_per_row']} us/row (worker and its"
                    f" normalizing processes), {i['member_bytes_per_row']} B and"
                    f" {i['wal_bytes_per_row']} B of WAL per member"
                    if "import_cpu_us_per_row" in i
                    else ""
                ),
                "202 <= 5 s, API RSS < 250 MB; rows/s stated",
                _goal(i["answered_202_s"] <= 5 and i["api_peak_rss_mb"] < 250),
            )
        )
    s = r.get("scale")
    if s:
        rates = [row["items_per_s"] for row in s]
        rss = [row["worker_peak_rss_mb"] for row in s]
        hist = max(row["max_run_history_events"] for row in s)
        flat = max(rates) / min(rates)
        grow = max(rss) / min(rss)
        ledger = [row["table_bytes_per_item"].get("task_items", 0) for row in s]
        rows.append(
            (
                "scale (personalized template to an audience) "
                + " / ".join(f"{row['recipients']:,}" for row in s),
                "items/s "
                + " / ".join(f"{x:,.0f}" for x in rates)
                + f" ({flat:.2f}x); worker RSS MB "
                + " / ".join(f"{x:.0f}" for x in rss)
                + f" ({grow:.2f}x); max history {hist:,} events; ledger bytes/recipient "
                + " / ".join(f"{x:.0f}" for x in ledger),
                "flat within 1.3x, RSS < 1.2x, history <= 10,240",
                _goal(flat <= 1.3 and grow < 1.2 and hist <= 10_240),
            )
        )
    a = r.get("api")
    if a:
        rows.append(
            (
                "API under load",
                f"{a['rps']} rps, p99 {a['p99_ms']} ms during a broadcast"
                f" (idle: {a['idle_rps']} rps, p99 {a['idle_p99_ms']} ms), {a['errors']}"
                " errors",
                "keeps answering",
                _goal(a["errors"] == 0),
            )
        )
    w = r.get("webhook_ingest")
    if w:
        rows.append(
            (
                "WhatsApp status webhooks",
                f"{w['statuses_per_s']:,} statuses/s, p50 {w['p50_ms']} ms, p99 {w['p99_ms']} ms"
                f" per signed POST of {w['batch']:,} (replayed: {w['replayed_statuses_per_s']:,}"
                f"/s, p99 {w['replayed_p99_ms']} ms) vs a bare INSERT of the same rows"
                f" {w['bare_insert_statuses_per_s']:,}/s, p99 {w['bare_insert_p99_ms']} ms;"
                f" {w['statuses']:,} statuses",
                "p99 < 100 ms per 1,000",
                _goal(w["p99_ms"] < 100),
            )
        )
    d = r.get("receipt_delete")
    if d:
        rows.append(
            (
                "receipt delete",
                f"{d['items_per_s']:,} items/s vs one DELETE {d['single_statement_items_per_s']:,}"
                f" ({d['ratio']:.2f}x), first page's start to last page's record, {d['pages']}"
                f" pages (end to end, POST to completed: {d['end_to_end_items_per_s']:,});"
                f" {d['receipts']:,} receipts",
                ">= 0.5x one DELETE",
                _goal(d["items_per_s"] >= 0.5 * d["single_statement_items_per_s"]),
            )
        )
    y = r.get("receipt_sync")
    if y:
        rows.append(
            (
                "receipt sync",
                f"{y['items_per_s']:,} items/s vs quota-limited {y['sandbox_limit_per_s']:,}",
                ">= 0.8x",
                _goal(y["items_per_s"] >= 0.8 * y["sandbox_limit_per_s"]),
            )
        )
    rc = r.get("reclaim")
    if rc:
        rows.append(
            (
                f"cleanup reclaims the ledger ({rc['recipients']:,} recipients)",
                f"{rc['ledger_rows_before_cleanup']:,} ledger rows -> "
                f"{rc['ledger_rows_after_cleanup']:,} after the cleanup workflow"
                f" ({rc['tasks_deleted']:,} tasks); tables {rc['bytes_before_cleanup_mb']} MB,"
                f" and the same broadcast again grew them by"
                f" {rc['grown_by_the_same_broadcast_again_mb']} MB" + _heap_and_indexes(rc),
                "rows gone, space reused",
                _goal(rc["ledger_rows_after_cleanup"] == 0),
            )
        )
    rls = r.get("rls_cost")
    if rls:
        costs = [rls["broadcast_cost_pct"], rls["list_cost_pct"], rls["items_cost_pct"]]
        cpu = ""
        if "broadcast_cpu_cost_pct" in rls:
            # The same pair's CPU: worker plus its Postgres backends, per item.
            costs.append(rls["broadcast_cpu_cost_pct"])
            cpu = (
                f"; CPU {rls['broadcast_rls_cpu_ms_per_item']:.3f} vs"
                f" {rls['broadcast_owner_cpu_ms_per_item']:.3f} ms an item"
                f" ({rls['broadcast_cpu_cost_pct']:+.1f}%; Postgres"
                f" {rls['broadcast_rls_postgres_cpu_ms_per_item']:.3f} vs"
                f" {rls['broadcast_owner_postgres_cpu_ms_per_item']:.3f})"
            )
        how = "side by side" if rls.get("broadcast_side_by_side") else "in turns"
        rows.append(
            (
                "row-level security's cost (services as the app role vs the owner)",
                f"broadcast {rls['broadcast_rls_items_per_s']:,} vs"
                f" {rls['broadcast_owner_items_per_s']:,} items/s end to end, {how}"
                f" ({rls['broadcast_cost_pct']:+.1f}%; {rls['recipients']:,} recipients,"
                f" {rls['provider_latency_ms']:.0f} ms latency){cpu}; task list"
                f" {rls['list_rls_rps']:,} vs {rls['list_owner_rps']:,} req/s"
                f" ({rls['list_cost_pct']:+.1f}%); ledger page {rls['items_rls_rps']:,} vs"
                f" {rls['items_owner_rps']:,} req/s ({rls['items_cost_pct']:+.1f}%); medians of"
                f" {rls['rounds']} rounds",
                "within 5%",
                _goal(max(costs) <= 5),
            )
        )
    load = r.get("load_average_at_start")
    during = r.get("load_average_during")
    ran = r.get("scenarios_run", "all")
    which = "" if ran == "all" else f", scenarios {', '.join(ran)} only"
    lines = [
        f"# Benchmark results ({'quick' if r.get('quick') else 'full'} run{which})",
        "",
        f"Commit `{r.get('commit')}`, measured {r.get('measured_at')} on {r.get('machine')}"
        + (f", load average {' / '.join(map(str, load))} at the start" if load else "")
        + (
            f" (1-minute load average during the run: mean {during['mean']}, max {during['max']})"
            if during
            else ""
        )
        + ".",
        "",
        *([f"Note: {r['note']}", ""] if r.get("note") else []),
        "| scenario | measured | goal | |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    lines += _costs(r)
    return "\n".join(lines) + "\n"


def _costs(r: dict[str, Any]) -> list[str]:
    """What one recipient and one page cost, at each size."""
    s = r.get("scale")
    if not s:
        return []
    lines = [
        "",
        "## What one broadcast item costs (docs/capacity.md reads these)",
        "",
        "| recipients | WAL B/item | rows written/item | transactions/page | ledger B/item |"
        " worker CPU ms/item | history events/page | Temporal actions/page |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in s:
        lines.append(
            f"| {row['recipients']:,} | {row['wal_bytes_per_item']:,.0f} |"
            f" {row['rows_written_per_item']} | {row['transactions_per_page']} |"
            f" {row['table_bytes_per_item'].get('task_items', 0):,.0f} |"
            f" {row['worker_cpu_s_per_1k_items']:.3f} | {row['history_events_per_page']} |"
            f" {row['temporal_actions_per_page']} |"
        )
    st = r.get("statements")
    if st and "by_kind" in st:
        lines += [
            "",
            f"Statements for {st['recipients']:,} recipients in {st['pages']} pages, from the"
            f" server's log: {st['statements']:,} ({st['statements_per_item']} per item,"
            f" {st['statements_per_page']} per page): "
            + ", ".join(f"{k} {v:,}" for k, v in st["by_kind"].items())
            + ".",
        ]
    return lines


def _heap_and_indexes(rc: dict[str, Any]) -> str:
    """Where the reclaimed bytes went: the heap back to the OS, the indexes' pages to reuse."""
    if "heap_mb_before_cleaned_again" not in rc:
        return ""
    heap = rc["heap_mb_before_cleaned_again"]
    index = rc["index_mb_before_cleaned_again"]
    return (
        f" (heap {heap[0]} -> {heap[1]} MB after the cleanup and VACUUM, {heap[2]} MB with the"
        f" broadcast again; indexes {index[0]} -> {index[1]} -> {index[2]} MB: emptied pages"
        " reused)"
    )
