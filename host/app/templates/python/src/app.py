"""{{name}}: a shipper formatter plugin.

Each SLS log becomes one Splunk HEC event: the log's contents as a JSON object, in wire order,
with the log's time, the log group's source, and ``sourcetype`` and ``index`` from the
plugin's config (``[plugin.config]`` in shipper's config file; both optional). A log without
contents is refused with a record error: shipper writes it to the dead-letter file and ships
the rest of its batch.

Sample input (``samples/input.jsonl``, one flattened log per line)::

    {"__time__": 1700000000, "__time_ns_part__": [123456789], "__source__": "10.0.0.1", "level": "info", "message": "user alice signed in"}

with config ``{"sourcetype": "my:app", "index": "main"}`` becomes (``samples/golden.txt``)::

    {"time":1700000000.123456,"source":"10.0.0.1","sourcetype":"my:app","index":"main","event":{"level":"info","message":"user alice signed in"}}
"""

import shipper_sdk as sdk


class Formatter:
    def __init__(self, sourcetype, index):
        self.sourcetype = sourcetype
        self.index = index

    @classmethod
    def init(cls, cfg):
        # Keys not read here are refused after init ("unknown config key ..."), so a typo in
        # [plugin.config] fails at start-up instead of being ignored.
        return cls(sourcetype=cfg.string("sourcetype"), index=cfg.string("index"))

    def format(self, group, log):
        if not log.contents:
            raise sdk.RecordError("the log has no contents")
        string = sdk.json_string
        body = "{" + ",".join(f"{string(k)}:{string(v)}" for k, v in log.contents) + "}"
        event = sdk.hec_event(
            sdk.HecBodyJson(body),
            time=log.timestamp(),
            source=group.source,
            sourcetype=self.sourcetype,
            index=self.index,
        )
        return [sdk.hec(event)]


WitWorld = sdk.export(Formatter, "{{name}}", "0.1.0")
