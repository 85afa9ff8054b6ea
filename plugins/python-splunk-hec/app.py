"""splunk-hec, in Python: SLS logs as Splunk HEC events the way Alibaba's seed script sends
them, byte for byte the same events as the Rust plugin (plugins/splunk-hec).

Sample input (flattened, one log)::

    {"__time__": 1700000000, "__time_ns_part__": [123456789],
     "__topic__": "actiontrail_audit_event", "__source__": "actiontrail",
     "__tag__:__receive_time__": "1700000005",
     "event": "{\\"eventName\\": \\"ConsoleSignin\\"}", "event_name": "ConsoleSignin"}

with config ``{"sourcetype": "aliyun:actiontrail", "index": "cloud"}`` becomes::

    {"time":1700000000.123456,"sourcetype":"aliyun:actiontrail","index":"cloud","event":{"__topic__":"actiontrail_audit_event","__source__":"actiontrail","__time_ns_part__":["123456789"],"__tag__:__receive_time__":"1700000005","event":{"eventName": "ConsoleSignin"},"event_name":"ConsoleSignin"}}

The event is the official SDK's flattened dict minus ``__time__`` (``Log.flat()``), in that
order; ``time`` is ``__time__`` plus the nanosecond part. Config (every key optional):

- ``json_fields``: topic -> field names whose value is JSON text to embed as JSON (default
  ``{"actiontrail_audit_event": ["event"]}``; ``{}`` turns it off). Strict JSON is embedded
  verbatim (surrounding whitespace trimmed); anything else stays a string.
- ``sourcetype``, ``source``, ``index``, ``host``: HEC metadata; unset or ``""`` leaves the
  key out.
- ``event_format``: ``"object"`` (default; the event is a JSON object) or ``"seed-string"``
  (the event is a string holding Python ``json.dumps`` text, exactly what the seed sends).
"""

import json

import shipper_sdk as sdk

DEFAULT_JSON_FIELDS = [("actiontrail_audit_event", ["event"])]


def _json_fields(cfg):
    value = cfg.take("json_fields")
    if value is None:
        return DEFAULT_JSON_FIELDS
    if not isinstance(value, sdk.JsonObject):
        raise sdk.ConfigError(
            "config key `json_fields`: expected an object of topic → list of field names, "
            f"got {sdk.kind_of(value)}"
        )
    table = []
    for topic, fields in value:
        if isinstance(fields, str):
            names = [fields]
        elif isinstance(fields, list) and not isinstance(fields, sdk.JsonObject) and all(
            isinstance(f, str) for f in fields
        ):
            names = list(fields)
        else:
            raise sdk.ConfigError(
                f"config key `json_fields`: topic `{topic}` must map to a list of field "
                f"names (strings), got {json.dumps(fields)}"
            )
        table.append((topic, names))
    return table


def _non_empty(cfg, key):
    value = cfg.string(key)
    return value if value else None


class SplunkHec:
    def __init__(self, json_fields, seed_string, sourcetype, source, index, host):
        self.json_fields = json_fields
        self.seed_string = seed_string
        self.sourcetype = sourcetype
        self.source = source
        self.index = index
        self.host = host

    @classmethod
    def init(cls, cfg):
        json_fields = _json_fields(cfg)
        event_format = cfg.choice("event_format", ("object", "seed-string"))
        return cls(
            json_fields=json_fields,
            seed_string=event_format == "seed-string",
            sourcetype=_non_empty(cfg, "sourcetype"),
            source=_non_empty(cfg, "source"),
            index=_non_empty(cfg, "index"),
            host=_non_empty(cfg, "host"),
        )

    def fields_for(self, topic):
        # The first entry for a topic wins, as in the Rust plugin's table.
        for t, names in self.json_fields:
            if t == topic:
                return names
        return ()

    def format(self, group, log):
        flat = log.flat()
        json_fields = self.fields_for(flat["__topic__"])
        if self.seed_string:
            body = sdk.HecBodyText(self.seed_body(flat, json_fields))
        else:
            body = sdk.HecBodyJson(self.object_body(flat, json_fields))
        event = sdk.hec_event(
            body,
            time=log.timestamp(),
            host=self.host,
            source=self.source,
            sourcetype=self.sourcetype,
            index=self.index,
        )
        return [sdk.hec(event)]

    @staticmethod
    def object_body(flat, json_fields):
        parts = []
        string = sdk.json_string
        for key, value in flat.items():
            if isinstance(value, sdk.TimeNsPart):
                text = f'["{int(value)}"]'
            elif key in json_fields:
                text = sdk.embed_json(value)
            else:
                text = string(value)
            parts.append(f"{string(key)}:{text}")
        return "{" + ",".join(parts) + "}"

    @staticmethod
    def seed_body(flat, json_fields):
        # The seed: json.loads each JSON field (keeping the string when it fails), then
        # json.dumps the dict with Python's defaults.
        for key, value in flat.items():
            if isinstance(value, sdk.TimeNsPart):
                flat[key] = value.as_tuple()
            elif key in json_fields:
                try:
                    flat[key] = sdk.python_loads(value)
                except Exception:
                    pass
        return json.dumps(flat)


WitWorld = sdk.export(SplunkHec, "splunk-hec", "0.1.0")
