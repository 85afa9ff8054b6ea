# -*- coding: utf-8 -*-
"""The "careful user" baseline of the shipper benchmark (tests/bench).

What an expert would write instead of the seed HEC script, with the same official SDK
(aliyun-log-python-sdk ConsumerWorker): the same events as the seed (the log as a JSON object,
ActionTrail's `event` field parsed as JSON, `time` from `__time__`), but 1000 events per POST to
`/services/collector/event` on one keep-alive `requests.Session`, gzip level 1, and the SDK's
default fetch interval (0.2 s) instead of the seed's 1 s. Checkpoints are saved after each
batch is acknowledged, as in the seed.

Environment: SLS_ENDPOINT SLS_AK_ID SLS_AK_KEY SLS_PROJECT SLS_LOGSTORE SLS_CG (as the seed),
BENCH_HEC_HOST BENCH_HEC_PORT BENCH_HEC_TOKEN (the receiver). Runs until killed.
"""
import gzip
import json
import logging
import os
from multiprocessing import current_process

import requests
from aliyun.log.consumer import (ConsumerProcessorBase, ConsumerWorker, CursorPosition,
                                 LogHubConfig)
from aliyun.log.pulllog_response import PullLogResponse

logging.basicConfig(level=logging.WARNING)

EVENTS_PER_POST = 1000
GZIP_LEVEL = 1
JSON_FIELDS = {"actiontrail_audit_event": ["event"]}


class BatchedHec(ConsumerProcessorBase):
    def __init__(self, host, port, token):
        super(BatchedHec, self).__init__()
        self.url = "http://{0}:{1}/services/collector/event".format(host, port)
        self.session = requests.Session()
        self.session.headers["Authorization"] = "Splunk {0}".format(token)
        self.session.headers["Content-Encoding"] = "gzip"

    def post(self, lines):
        body = gzip.compress("\n".join(lines).encode("utf-8"), compresslevel=GZIP_LEVEL)
        self.session.post(self.url, data=body, timeout=120).raise_for_status()

    def process(self, log_groups, check_point_tracker):
        logs = PullLogResponse.loggroups_to_flattern_list(log_groups, time_as_str=True,
                                                          decode_bytes=True)
        lines = []
        for log in logs:
            time = log.pop("__time__")
            for field in JSON_FIELDS.get(log.get("__topic__", ""), ()):
                try:
                    log[field] = json.loads(log[field])
                except (KeyError, ValueError):
                    pass
            lines.append(json.dumps({"time": time, "event": log}, separators=(",", ":")))
            if len(lines) >= EVENTS_PER_POST:
                self.post(lines)
                lines = []
        if lines:
            self.post(lines)
        self.save_checkpoint(check_point_tracker)


def main():
    env = os.environ
    group = env["SLS_CG"]
    option = LogHubConfig(env["SLS_ENDPOINT"], env["SLS_AK_ID"], env["SLS_AK_KEY"],
                          env["SLS_PROJECT"], env["SLS_LOGSTORE"], group,
                          "{0}-{1}".format(group, current_process().pid),
                          cursor_position=CursorPosition.BEGIN_CURSOR,
                          heartbeat_interval=20, data_fetch_interval=0.2)
    args = (env["BENCH_HEC_HOST"], int(env["BENCH_HEC_PORT"]), env["BENCH_HEC_TOKEN"])
    ConsumerWorker(BatchedHec, option, args=args).start(join=True)


if __name__ == "__main__":
    main()
