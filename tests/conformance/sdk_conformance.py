#!/usr/bin/env python3
"""Conformance scenarios: the OFFICIAL, unmodified aliyun-log-python-sdk against `shipper emulator`.

Acceptance items A0-A11 of docs/sls-protocol.md section 13.5. Run by tests/e2e/emulator_sdk.rs,
one scenario per emulator process:

    HTTP_PROXY=http://127.0.0.1:PORT NO_PROXY= SLS_AK_ID=... SLS_AK_KEY=... \
        python tests/conformance/sdk_conformance.py SCENARIO

The SDK is pointed at the emulator in "proxy mode" (docs/sls-protocol.md section 2.3): endpoint
`localhost` (so `Host: <project>.localhost`), every request sent through HTTP_PROXY, which is
the emulator itself. Exit status 0 = pass; on failure the traceback says which check failed.

`worker` is an internal sub-command: one ConsumerWorker in its own process (so a scenario can
SIGKILL/SIGSTOP it), appending one JSON line per processed log to --out.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

from aliyun.log import LogClient, LogException, LogItem, PutLogsRequest
from aliyun.log.consumer import (ConsumerProcessorBase, ConsumerWorker, CursorPosition,
                                 LogHubConfig)

ENDPOINT = os.environ.get("SLS_ENDPOINT", "localhost")
AK_ID = os.environ["SLS_AK_ID"]
AK_KEY = os.environ["SLS_AK_KEY"]
PROJECT = "conformance"
HEARTBEAT = 2  # seconds; the SDK sets the group timeout to 2 x heartbeat = 4 s
FETCH_INTERVAL = 0.5
DEADLINE = float(os.environ.get("SHIPPER_TEST_DEADLINE_SECS", "60"))
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "sls")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def eventually(what, check, deadline=DEADLINE):
    """Polls check() until it returns a truthy value; fails with the last value after deadline."""
    start = time.time()
    last = None
    while time.time() - start < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what}: not true after {deadline}s (last: {last!r})")


def client():
    return LogClient(ENDPOINT, AK_ID, AK_KEY)


def expect_error(code, status, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except LogException as e:
        assert (e.get_error_code(), e.get_resp_status()) == (code, status), \
            f"{fn.__name__}: expected {status} {code}, got {e.get_resp_status()} {e.get_error_code()}: {e}"
        assert e.get_request_id(), "request id is copied into the exception"
        return e
    raise AssertionError(f"{fn.__name__}: expected {code}, got success")


def setup(c, logstore, shards=4):
    try:
        c.create_project(PROJECT, "conformance suite")
    except LogException as e:
        assert e.get_error_code() == "ProjectAlreadyExist", e
    c.create_logstore(PROJECT, logstore, ttl=7, shard_count=shards)


def items(ids, text="héllo ✓ 日本語"):
    return [LogItem(contents=[("id", str(i)), ("msg", f"{text} #{i}"),
                              ("level", ["INFO", "WARN", "ERROR"][i % 3])]) for i in ids]


def put(c, logstore, ids, topic="", source=None, tags=None, hash_key=None):
    req = PutLogsRequest(PROJECT, logstore, topic, source, items(ids), hashKey=hash_key,
                         logtags=tags or [])
    c.put_logs(req)


def put_spread(c, logstore, ids, groups=8):
    """Puts ids as `groups` load-balanced requests, so every shard of a 4-shard store gets some."""
    ids = list(ids)
    step = max(1, len(ids) // groups)
    for i in range(0, len(ids), step):
        put(c, logstore, ids[i:i + step])


def drain(c, logstore, shard, cursor, end_cursor=None, **kw):
    """Pulls from cursor until the server echoes it (or end_cursor); returns flattened logs, last cursor."""
    logs = []
    while True:
        r = c.pull_logs(PROJECT, logstore, shard, cursor, count=7, end_cursor=end_cursor, **kw)
        nxt = r.get_next_cursor()
        logs.extend(r.get_flatten_logs_json())
        if nxt == cursor or (end_cursor and nxt == end_cursor):
            return logs, nxt
        assert r.get_loggroup_count() > 0 or kw.get("query"), "a moving cursor brings data"
        cursor = nxt


def ids_of(logs):
    return sorted(int(x["id"]) for x in logs)


# ---------------------------------------------------------------------------------------------
# A0: signatures


def scenario_signatures():
    """Every case of signature_vectors.json (v1, STS, lz4 PutLogs, v4) passes the signature
    check and, carrying a fixed 2024 date, is then refused as SLS refuses a request time more
    than 15 minutes off (400 RequestTimeExpired); v4 through the SDK works; a wrong secret
    raises SignatureNotMatch."""
    import requests

    with open(os.path.join(FIXTURES, "signature_vectors.json"), encoding="utf8") as f:
        doc = json.load(f)
    assert (doc["access_key_id"], doc["access_key_secret"]) == (AK_ID, AK_KEY), \
        "start the emulator with the vectors' key pair"
    proxy = os.environ["HTTP_PROXY"]
    checked = 0
    for case in doc["cases"]:
        headers = dict(case["headers_sent_by_sdk"])
        headers["Authorization"] = case["authorization"]
        body = bytes.fromhex(case["body_hex"]) if case.get("body_hex") else b""
        target = case.get("request_target_on_wire")
        params = None
        if target is None:  # the v4 case: rebuild the target from the signed parameters
            target = "/logstores/test-logstore/consumergroups/test-cg"
            params = case["query_params_as_signed"]
        url = "http://" + headers["Host"] + target
        r = requests.request(case["method"], url, params=params, headers=headers, data=body,
                             proxies={"http": proxy})
        answer = r.json() if r.content else {}
        assert (r.status_code, answer.get("errorCode")) == (400, "RequestTimeExpired"), \
            (case["name"], answer)
        assert r.headers.get("x-log-requestid"), case["name"]
        checked += 1
    assert checked == 12, checked

    # v4 through the SDK itself.
    from aliyun.log.auth import AUTH_VERSION_4
    v4 = LogClient(ENDPOINT, AK_ID, AK_KEY, auth_version=AUTH_VERSION_4, region="cn-hangzhou")
    v4.create_project(PROJECT, "v4")
    v4.create_logstore(PROJECT, "v4", shard_count=1)
    put(v4, "v4", range(3))
    begin = v4.get_begin_cursor(PROJECT, "v4", 0).get_cursor()
    assert ids_of(drain(v4, "v4", 0, begin, query="* | where level = 'INFO'")[0]) == [0]
    bad4 = LogClient(ENDPOINT, AK_ID, "wrong", auth_version=AUTH_VERSION_4, region="cn-hangzhou")
    expect_error("SignatureNotMatch", 401, bad4.list_logstore, PROJECT)

    bad = LogClient(ENDPOINT, AK_ID, AK_KEY + "-wrong")
    e = expect_error("SignatureNotMatch", 401, bad.list_project)
    assert e.get_error_message()
    other = LogClient(ENDPOINT, "someone-else", AK_KEY)
    expect_error("Unauthorized", 401, other.list_project)
    log("A0 ok")


# ---------------------------------------------------------------------------------------------
# A1, A2, A8 (partly): setup, produce, pull


def scenario_produce_pull():
    c = client()
    setup(c, "store", 4)
    ls = c.get_logstore(PROJECT, "store")
    assert (ls.get_shard_count(), ls.get_ttl()) == (4, 7), ls.get_all_headers()
    assert "store" in c.list_logstore(PROJECT).get_logstores()
    assert any(p["projectName"] == PROJECT for p in c.list_project().get_projects())
    assert c.get_project(PROJECT).get_projectname() == PROJECT
    shards = c.list_shards(PROJECT, "store").get_shards_info()
    assert [s["shardID"] for s in shards] == [0, 1, 2, 3]
    assert all(s["status"] == "readwrite" for s in shards)
    assert [s["inclusiveBeginKey"] for s in shards] == [
        "00000000000000000000000000000000", "40000000000000000000000000000000",
        "80000000000000000000000000000000", "c0000000000000000000000000000000"]
    assert shards[3]["exclusiveEndKey"] == "ffffffffffffffffffffffffffffffff"

    # A8: fresh logstore has no groups.
    assert c.list_consumer_group(PROJECT, "store").get_consumer_groups() == []

    t0 = int(time.time())
    # Many groups, load-balanced, each with a topic, a source and tags.
    expected = {}
    next_id = 0
    for g in range(40):
        ids = list(range(next_id, next_id + 5))
        next_id += 5
        put(c, "store", ids, topic=f"topic-{g % 3}", source=f"10.0.0.{g}",
            tags=[("tag", f"t{g}"), ("ünï", "cödé ✓")])
        for i in ids:
            expected[i] = (f"topic-{g % 3}", f"10.0.0.{g}", f"t{g}")
    # Hash-key routing: key 0xc0… lands in the last shard.
    hashed = list(range(next_id, next_id + 3))
    put(c, "store", hashed, topic="hashed", hash_key="c0000000000000000000000000000001")
    next_id += 3

    got = []
    for shard in range(4):
        begin = c.get_cursor(PROJECT, "store", shard, "begin").get_cursor()
        end = c.get_end_cursor(PROJECT, "store", shard).get_cursor()
        logs, last = drain(c, "store", shard, begin)
        assert last == end, (shard, last, end)
        # The end cursor echoes with no data.
        r = c.pull_logs(PROJECT, "store", shard, end)
        assert (r.get_loggroup_count(), r.get_next_cursor()) == (0, end)
        # Uncompressed pulls serve the same logs.
        plain, _ = drain(c, "store", shard, begin, compress=False)
        assert plain == logs, shard
        if shard == 3:
            assert set(hashed) <= set(int(x["id"]) for x in logs)
        else:
            assert not set(hashed) & set(int(x["id"]) for x in logs)
        # By time: everything was written at or after t0.
        assert c.get_cursor(PROJECT, "store", shard, t0 - 10).get_cursor() == begin
        assert c.get_cursor(PROJECT, "store", shard, t0 + 3600).get_cursor() == end
        if logs:
            t = c.get_cursor_time(PROJECT, "store", shard, begin).get_cursor_time()
            assert t0 - 1 <= t <= time.time() + 1, (t, t0)
        got.extend(logs)
    assert ids_of(got) == list(range(next_id)), "every log exactly once"
    for x in got:
        i = int(x["id"])
        assert x["msg"] == f"héllo ✓ 日本語 #{i}", x
        assert x["__time__"] >= t0 - 1
        assert "__time_ns_part__" in x
        if i in expected:
            topic, source, tag = expected[i]
            assert (x["__topic__"], x["__source__"], x["__tag__:tag"]) == (topic, source, tag), x
            assert x["__tag__:ünï"] == "cödé ✓", x
    # end_cursor bounds a pull (pull_log by time uses it).
    shard = 0
    begin = c.get_begin_cursor(PROJECT, "store", shard).get_cursor()
    all0, _ = drain(c, "store", shard, begin)
    mid = c.pull_logs(PROJECT, "store", shard, begin, count=2).get_next_cursor()
    part, last = drain(c, "store", shard, begin, end_cursor=mid)
    assert last == mid and part == all0[:len(part)] and 0 < len(part) < len(all0)
    log(f"A1/A2 ok: {len(got)} logs")


def scenario_spl():
    c = client()
    setup(c, "spl", 2)
    put(c, "spl", range(30))
    total = []
    for shard in range(2):
        begin = c.get_begin_cursor(PROJECT, "spl", shard).get_cursor()
        end = c.get_end_cursor(PROJECT, "spl", shard).get_cursor()
        logs, last = drain(c, "spl", shard, begin,
                           query="* | where level = 'WARN' or level = 'ERROR' | project id, level")
        assert last == end
        assert all(set(x) - {"__time__", "__topic__", "__source__", "__time_ns_part__"} ==
                   {"id", "level"} for x in logs), logs[:2]
        assert all(x["level"] in ("WARN", "ERROR") for x in logs)
        # A query matching nothing still moves the cursor to the end.
        r = c.pull_logs(PROJECT, "spl", shard, begin, query="* | where level = 'nope'")
        assert (r.get_log_count(), r.get_next_cursor()) == (0, end)
        assert r.get_raw_log_group_count_before_query() >= (1 if shard == 0 or logs else 0)
        total.extend(logs)
    assert ids_of(total) == [i for i in range(30) if i % 3 != 0]
    expect_error("ParameterInvalid", 400, c.pull_logs, PROJECT, "spl", 0, begin,
                 query="* | stats count(*) by level")
    log("SPL ok")


# ---------------------------------------------------------------------------------------------
# A8, A9: empty states and errors


def scenario_errors():
    c = client()
    setup(c, "errs", 2)
    expect_error("ProjectNotExist", 404, c.get_logstore, "no-such-project", "errs")
    expect_error("LogStoreNotExist", 404, c.get_logstore, PROJECT, "nope")
    expect_error("LogStoreNotExist", 404, c.list_shards, PROJECT, "nope")
    expect_error("ShardNotExist", 400, c.get_cursor, PROJECT, "errs", 9, "begin")
    expect_error("ConsumerGroupNotExist", 404, c.get_check_point, PROJECT, "errs", "nope")
    expect_error("ConsumerGroupNotExist", 404, c.heart_beat, PROJECT, "errs", "nope", "c", [])
    begin = c.get_begin_cursor(PROJECT, "errs", 0).get_cursor()
    expect_error("InvalidCursor", 400, c.pull_logs, PROJECT, "errs", 0, "not-a-cursor")
    expect_error("InvalidCursor", 400, c.pull_logs, PROJECT, "errs", 0, "MTIzNDU2Nzg5MA==")
    expect_error("ParameterInvalid", 400, c.pull_logs, PROJECT, "errs", 0, begin, count=1001)
    # count=0 is replaced by 1000 inside the SDK (`count or 1000`); send it by hand.
    expect_error("ParameterInvalid", 400, c.pull_logs, PROJECT, "errs", 0, begin, count=-1)
    expect_error("ProjectAlreadyExist", 400, c.create_project, PROJECT, "again")
    expect_error("LogStoreAlreadyExist", 400, c.create_logstore, PROJECT, "errs", shard_count=2)

    # A8: empty states.
    assert c.list_consumer_group(PROJECT, "errs").get_consumer_groups() == []
    c.create_consumer_group(PROJECT, "errs", "cg", 4)
    expect_error("ConsumerGroupAlreadyExist", 400, c.create_consumer_group, PROJECT, "errs", "cg", 4)
    groups = c.list_consumer_group(PROJECT, "errs").get_consumer_groups()
    assert [(g.get_consumer_group_name(), g.get_timeout()) for g in groups] == [("cg", 4)]
    cps = c.get_check_point(PROJECT, "errs", "cg", 1).get_consumer_group_check_points()
    assert len(cps) == 1 and cps[0]["shard"] == 1 and cps[0]["checkpoint"] == "", cps
    assert len(c.get_check_point(PROJECT, "errs", "cg").get_consumer_group_check_points()) == 2
    assert c.heart_beat(PROJECT, "errs", "cg", "c1", []).get_shards() == [0, 1]
    expect_error("NotExistConsumerWithBody", 400, c.heart_beat, PROJECT, "errs", "cg", "ghost", [0])
    # Owner check when not forced; forced updates are accepted.
    expect_error("ConsumerNotExist", 400, c.update_check_point, PROJECT, "errs", "cg", 0, begin,
                 consumer="c2", force_success=False)
    c.heart_beat(PROJECT, "errs", "cg", "c2", [])
    expect_error("ConsumerNotMatch", 400, c.update_check_point, PROJECT, "errs", "cg", 0, begin,
                 consumer="c2", force_success=False)
    c.update_check_point(PROJECT, "errs", "cg", 0, begin, consumer="c1", force_success=False)
    c.update_check_point(PROJECT, "errs", "cg", 0, begin, consumer="c2", force_success=True)
    cps = c.get_check_point(PROJECT, "errs", "cg", 0).get_consumer_group_check_points()
    assert (cps[0]["checkpoint"], cps[0]["consumer"]) == (begin, "c2"), cps
    expect_error("ShardNotExist", 400, c.update_check_point, PROJECT, "errs", "cg", 7, begin)
    c.delete_consumer_group(PROJECT, "errs", "cg")
    expect_error("ConsumerGroupNotExist", 404, c.get_check_point, PROJECT, "errs", "cg")
    c.delete_logstore(PROJECT, "errs")
    expect_error("LogStoreNotExist", 404, c.get_logstore, PROJECT, "errs")
    log("A8/A9 ok")


# ---------------------------------------------------------------------------------------------
# Consumer workers


class Recorder(ConsumerProcessorBase):
    """Records every processed log as one JSON line: consumer, shard, id."""

    def __init__(self, consumer, out, lock):
        super().__init__()
        self.consumer = consumer
        self.out = out
        self.lock = lock

    def process(self, log_groups, check_point_tracker):
        lines = []
        for g in log_groups.LogGroups:
            for lg in g.Logs:
                ids = [c.Value for c in lg.Contents if c.Key == "id"]
                lines.append(json.dumps({"consumer": self.consumer, "shard": self.shard_id,
                                         "id": int(ids[0]), "t": time.time()}))
        with self.lock:
            with open(self.out, "a", encoding="utf8") as f:
                f.write("".join(line + "\n" for line in lines))
                f.flush()
        self.save_checkpoint(check_point_tracker)


def make_worker(logstore, group, consumer, out, lock=None, position=CursorPosition.BEGIN_CURSOR,
                end_time=None, in_order=False):
    option = LogHubConfig(ENDPOINT, AK_ID, AK_KEY, PROJECT, logstore, group, consumer,
                          cursor_position=position, heartbeat_interval=HEARTBEAT,
                          data_fetch_interval=FETCH_INTERVAL, in_order=in_order,
                          cursor_end_time=end_time)
    return ConsumerWorker(Recorder, option, args=(consumer, out, lock or threading.Lock()))


def read_records(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf8") as f:
        return [json.loads(line) for line in f if line.strip()]


def stop(worker):
    worker.shutdown()
    worker.join(DEADLINE)
    assert not worker.is_alive(), "worker stopped"


def checkpoints(c, logstore, group):
    return {cp["shard"]: cp["checkpoint"] for cp in
            c.get_check_point(PROJECT, logstore, group).get_consumer_group_check_points()}


def end_cursors(c, logstore, shards):
    return {s: c.get_end_cursor(PROJECT, logstore, s).get_cursor() for s in shards}


def scenario_worker():
    """A3: one worker consumes every log exactly once and its checkpoints land on the server;
    A4: a restart under the same name processes only the new logs."""
    c = client()
    setup(c, "work", 4)
    n = 400
    for start in range(0, n, 20):
        put(c, "work", range(start, start + 20), topic="w")
    out = os.path.join(tempfile.mkdtemp(prefix="conformance-"), "records.jsonl")
    w = make_worker("work", "cg", "consumer-1", out)
    w.start()
    eventually("all logs processed", lambda: len(read_records(out)) >= n)
    stop(w)
    recs = read_records(out)
    assert sorted(r["id"] for r in recs) == list(range(n)), "exactly once"
    assert checkpoints(c, "work", "cg") == end_cursors(c, "work", range(4)), "checkpoints at the end"
    log("A3 ok")

    for start in range(n, n + 100, 20):
        put(c, "work", range(start, start + 20), topic="w")
    w = make_worker("work", "cg", "consumer-1", out)
    w.start()
    eventually("new logs processed", lambda: len(read_records(out)) >= n + 100)
    stop(w)
    recs = read_records(out)
    assert sorted(r["id"] for r in recs) == list(range(n + 100)), "no duplicates after restart"
    assert checkpoints(c, "work", "cg") == end_cursors(c, "work", range(4))
    log("A4 ok")


def assert_no_interleaving(records):
    """No shard is processed by two workers at once: per shard, in processing order, a worker
    that handed a shard over never processes it again (no a, b, a)."""
    by_shard = {}
    for r in sorted(records, key=lambda r: r["t"]):
        runs = by_shard.setdefault(r["shard"], [])
        if not runs or runs[-1] != r["consumer"]:
            assert r["consumer"] not in runs, f"shard {r['shard']} went back to {r['consumer']}: {runs}"
            runs.append(r["consumer"])


def held_by(records, since):
    by = {}
    for r in records:
        if r["t"] >= since:
            by.setdefault(r["consumer"], set()).add(r["shard"])
    return by


def scenario_scale_out():
    """A5: a second worker joins and the shards split 2/2 with no shard processed by both;
    then the first stops gracefully and the second takes its shards over after the timeout,
    resuming from the checkpoints (nothing lost, nothing twice)."""
    c = client()
    setup(c, "scale", 4)
    out = os.path.join(tempfile.mkdtemp(prefix="conformance-"), "records.jsonl")
    lock = threading.Lock()
    a = make_worker("scale", "cg", "a", out, lock)
    b = make_worker("scale", "cg", "b", out, lock)
    try:
        scale_out_steps(c, out, a, b)
    finally:
        for w in (a, b):
            if w.is_alive():
                w.shutdown()
        for w in (a, b):
            if w.is_alive():
                w.join(DEADLINE)


def scale_out_steps(c, out, a, b):
    a.start()
    put_spread(c, "scale", range(0, 40))
    eventually("a consumes", lambda: len(read_records(out)) >= 40)
    b.start()
    # Each worker's own view: data written now is processed by its holder only.
    next_id = 40

    def balanced():
        nonlocal next_id
        t = time.time()
        put_spread(c, "scale", range(next_id, next_id + 40))
        next_id += 40
        eventually("batch processed", lambda: len(read_records(out)) >= next_id)
        by = held_by(read_records(out), t)
        shards = sorted(s for v in by.values() for s in v)
        return len(by) == 2 and all(len(v) == 2 for v in by.values()) and shards == [0, 1, 2, 3]

    eventually("shards split 2/2 between a and b", balanced, deadline=min(DEADLINE, 40))
    recs = read_records(out)
    assert sorted(r["id"] for r in recs) == list(range(next_id)), "exactly once while rebalancing"
    log("A5 ok")

    stop(a)
    t_stop = time.time()
    put_spread(c, "scale", range(next_id, next_id + 80))
    next_id += 80
    eventually("b takes a's shards after the timeout", lambda: len(read_records(out)) >= next_id)
    recs = read_records(out)
    assert sorted(r["id"] for r in recs) == list(range(next_id)), "no loss, no duplicate on hand-off"
    assert held_by(recs, t_stop).keys() == {"b"}
    assert_no_interleaving(recs)
    stop(b)
    log("hand-off ok")


def worker_process(logstore, group, consumer, out):
    """Starts this script's `worker` sub-command; SIGTERM stops it gracefully."""
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), "worker",
                             "--logstore", logstore, "--group", group, "--consumer", consumer,
                             "--out", out])


def scenario_failover():
    """A6: SIGKILL one worker; the survivor holds all shards after the timeout and resumes from
    the dead worker's checkpoints (duplicates allowed, nothing lost). A7: a SIGSTOPped worker
    past the timeout gets NotExistConsumerWithBody, re-joins and the group converges again."""
    c = client()
    setup(c, "fail", 4)
    c.create_consumer_group(PROJECT, "fail", "cg", 2 * HEARTBEAT)
    tmp = tempfile.mkdtemp(prefix="conformance-")
    outs = {n: os.path.join(tmp, f"{n}.jsonl") for n in ("a", "b")}
    procs = {n: worker_process("fail", "cg", n, outs[n]) for n in ("a", "b")}
    try:
        next_id = 0

        def records():
            return read_records(outs["a"]) + read_records(outs["b"])

        def round_trip():
            nonlocal next_id
            t = time.time()
            put_spread(c, "fail", range(next_id, next_id + 40))
            next_id += 40
            eventually("batch processed", lambda: len({r["id"] for r in records()}) >= next_id)
            return held_by(records(), t)

        eventually("both workers hold shards",
                   lambda: len(round_trip()) == 2, deadline=min(DEADLINE, 40))
        procs["a"].kill()
        procs["a"].wait()
        t_kill = time.time()
        put_spread(c, "fail", range(next_id, next_id + 80))
        next_id += 80
        eventually("survivor consumes everything",
                   lambda: {r["id"] for r in records()} >= set(range(next_id)))
        assert held_by(records(), t_kill).keys() == {"b"}
        log(f"A6 ok: failover after {time.time() - t_kill:.1f}s")

        # A7: freeze b past the timeout while a new worker c takes over, then thaw it.
        procs["c"] = worker_process("fail", "cg", "c", outs["a"])
        eventually("c joins", lambda: "c" in round_trip())
        procs["b"].send_signal(signal.SIGSTOP)
        t_freeze = time.time()
        put_spread(c, "fail", range(next_id, next_id + 40))
        next_id += 40
        eventually("c takes b's shards", lambda: {r["id"] for r in records()} >= set(range(next_id)))
        assert held_by(records(), t_freeze).keys() == {"c"}
        procs["b"].send_signal(signal.SIGCONT)
        eventually("the group converges with b back",
                   lambda: sorted(len(v) for v in round_trip().values()) == [2, 2],
                   deadline=min(DEADLINE, 40))
        log("A7 ok")
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
                p.wait()


def scenario_split_order_end_time():
    """A10: split_shard makes the parent readonly and adds two readwrite children; with
    in_order the children are consumed only after the parent was drained; A11: a worker with
    cursor_end_time stops by itself once drained."""
    c = client()
    setup(c, "order", 1)
    put(c, "order", range(0, 30))
    res = c.split_shard(PROJECT, "order", 0, "80000000000000000000000000000000")
    shards = {s["shardID"]: s["status"] for s in res.get_shards_info()}
    assert shards == {0: "readonly", 1: "readwrite", 2: "readwrite"}, shards
    listed = {s["shardID"]: s["status"] for s in c.list_shards(PROJECT, "order").get_shards_info()}
    assert listed == shards
    put(c, "order", range(30, 60))  # lands in the children
    out = os.path.join(tempfile.mkdtemp(prefix="conformance-"), "records.jsonl")
    w = make_worker("order", "cg", "ordered", out, in_order=True)
    w.start()
    eventually("all logs processed", lambda: len(read_records(out)) >= 60)
    recs = read_records(out)
    assert sorted(r["id"] for r in recs) == list(range(60))
    last_parent = max(r["t"] for r in recs if r["shard"] == 0)
    first_child = min(r["t"] for r in recs if r["shard"] != 0)
    assert last_parent <= first_child, "children wait for the parent"
    # The drained read-only parent stops being assigned: a heartbeat identical to the
    # worker's own (listing every shard it may hold) no longer gets shard 0 back.
    end0 = c.get_end_cursor(PROJECT, "order", 0).get_cursor()
    eventually("parent checkpoint at its end", lambda: checkpoints(c, "order", "cg")[0] == end0)
    assert sorted(c.heart_beat(PROJECT, "order", "cg", "ordered", [0, 1, 2]).get_shards()) == [1, 2]
    stop(w)
    log("A10 ok")

    c.create_logstore(PROJECT, "endtime", shard_count=2)
    put(c, "endtime", range(0, 20))
    out = os.path.join(tempfile.mkdtemp(prefix="conformance-"), "records.jsonl")
    w = make_worker("endtime", "cg", "once", out, end_time=int(time.time()) + 1)
    w.start()
    w.join(DEADLINE)
    assert not w.is_alive(), "a cursor_end_time worker stops by itself"
    assert sorted(r["id"] for r in read_records(out)) == list(range(20))
    log("A11 ok")


def scenario_generated():
    """`shipper emulator --generate` writes ActionTrail-style audit events and nginx logs."""
    c = client()
    logstore = "generated"

    def some_logs():
        logs = []
        for shard in range(4):
            begin = c.get_begin_cursor(PROJECT, logstore, shard).get_cursor()
            logs.extend(c.pull_logs(PROJECT, logstore, shard, begin).get_flatten_logs_json())
        topics = {x["__topic__"] for x in logs}
        return logs if {"actiontrail_audit_event", "nginx_access_log"} <= topics else None

    logs = eventually("both sample kinds appear", some_logs)
    for x in logs:
        if x["__topic__"] == "actiontrail_audit_event":
            event = json.loads(x["event"])
            assert event["eventType"] == "ApiCall" and event["userIdentity"]["userName"], event
        else:
            assert x["status"].isdigit() and x["request_method"], x
            assert x["__tag__:__hostname__"].startswith("web-"), x
    log(f"generated ok: {len(logs)} logs")


def worker_main(args):
    stop_event = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop_event.set())
    w = make_worker(args.logstore, args.group, args.consumer, args.out)
    w.start()
    stop_event.wait()
    stop(w)


SCENARIOS = {
    "signatures": scenario_signatures,
    "produce_pull": scenario_produce_pull,
    "spl": scenario_spl,
    "errors": scenario_errors,
    "one_worker": scenario_worker,
    "scale_out": scenario_scale_out,
    "failover": scenario_failover,
    "split_order_end_time": scenario_split_order_end_time,
    "generated": scenario_generated,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=sorted(SCENARIOS) + ["worker"])
    parser.add_argument("--logstore")
    parser.add_argument("--group")
    parser.add_argument("--consumer")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.scenario == "worker":
        worker_main(args)
    else:
        started = time.time()
        SCENARIOS[args.scenario]()
        log(f"scenario {args.scenario} passed in {time.time() - started:.1f}s")


if __name__ == "__main__":
    main()
