"""An official-SDK ConsumerWorker for shipper's mixed-group test (host/sls/tests/integration/mixed.rs).

Usage: mixed_worker.py ENDPOINT PROJECT LOGSTORE GROUP CONSUMER HEARTBEAT_SECONDS
Credentials come from SLS_AK_ID / SLS_AK_KEY; the emulator is reached through HTTP_PROXY.
Prints "READY" once started, then one line "LOG <shard> <id>" per processed log, and
"HELD <shard>" / "GONE <shard>" when a shard starts / stops. Checkpoints are flushed after
every batch (force=True) so a hand-off repeats nothing. Exits cleanly when stdin closes.
"""
import os
import sys
import threading

from aliyun.log.consumer import (ConsumerProcessorBase, ConsumerWorker, CursorPosition,
                                 LogHubConfig)

out_lock = threading.Lock()


def emit(line):
    with out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Recorder(ConsumerProcessorBase):
    def initialize(self, shard):
        super().initialize(shard)
        emit("HELD %d" % shard)

    def process(self, log_groups, check_point_tracker):
        for group in log_groups.LogGroups:
            for log in group.Logs:
                for content in log.Contents:
                    if content.Key == "id":
                        value = content.Value
                        if isinstance(value, bytes):
                            value = value.decode("utf-8")
                        emit("LOG %d %s" % (self.shard_id, value))
        self.save_checkpoint(check_point_tracker, force=True)

    def shutdown(self, check_point_tracker):
        super().shutdown(check_point_tracker)
        emit("GONE %d" % self.shard_id)


def main():
    endpoint, project, logstore, group, consumer, heartbeat = sys.argv[1:7]
    option = LogHubConfig(endpoint, os.environ["SLS_AK_ID"], os.environ["SLS_AK_KEY"],
                          project, logstore, group, consumer,
                          cursor_position=CursorPosition.BEGIN_CURSOR,
                          heartbeat_interval=int(heartbeat), data_fetch_interval=0.2,
                          worker_pool_size=4)
    worker = ConsumerWorker(Recorder, option)
    worker.start()
    emit("READY")
    sys.stdin.read()
    worker.shutdown_and_wait()
    emit("STOPPED")


if __name__ == "__main__":
    main()
