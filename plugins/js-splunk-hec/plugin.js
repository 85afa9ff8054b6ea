// splunk-hec, in JavaScript: SLS logs as Splunk HEC events the way Alibaba's seed script
// sends them, byte for byte the same events as the Rust plugin (plugins/splunk-hec).
//
// Sample input (flattened, one log):
//
//   {"__time__": 1700000000, "__time_ns_part__": [123456789],
//    "__topic__": "actiontrail_audit_event", "__source__": "actiontrail",
//    "__tag__:__receive_time__": "1700000005",
//    "event": "{\"eventName\": \"ConsoleSignin\"}", "event_name": "ConsoleSignin"}
//
// with config {"sourcetype": "aliyun:actiontrail", "index": "cloud"} becomes:
//
//   {"time":1700000000.123456,"sourcetype":"aliyun:actiontrail","index":"cloud","event":{"__topic__":"actiontrail_audit_event","__source__":"actiontrail","__time_ns_part__":["123456789"],"__tag__:__receive_time__":"1700000005","event":{"eventName": "ConsoleSignin"},"event_name":"ConsoleSignin"}}
//
// The event is the official SDK's flattened dict minus `__time__` (Log.flat()), in that
// order; `time` is `__time__` plus the nanosecond part. Config (every key optional):
// - json_fields: topic -> field names whose value is JSON text to embed as JSON (default
//   {"actiontrail_audit_event": ["event"]}; {} turns it off). Strict JSON is embedded
//   verbatim (surrounding whitespace trimmed); anything else stays a string.
// - sourcetype, source, index, host: HEC metadata; unset or "" leaves the key out.
// - event_format: "object" (default; the event is a JSON object) or "seed-string" (the
//   event is a string holding Python json.dumps text, exactly what the seed sends).

import {
  ConfigError,
  TimeNsPart,
  embedJson,
  exportPlugin,
  hec,
  hecEvent,
  jsonString,
  kindOf,
} from '../../sdk/js/shipper_sdk.js';
import { pyString, pythonRedump } from '../../sdk/js/python_json.js';

const DEFAULT_JSON_FIELDS = [['actiontrail_audit_event', ['event']]];

function jsonFields(cfg) {
  const value = cfg.take('json_fields');
  if (value === undefined) return DEFAULT_JSON_FIELDS;
  if (kindOf(value) !== 'an object') {
    throw new ConfigError(
      `config key \`json_fields\`: expected an object of topic → list of field names, got ${kindOf(value)}`,
    );
  }
  return Object.entries(value).map(([topic, fields]) => {
    if (typeof fields === 'string') return [topic, [fields]];
    if (Array.isArray(fields) && fields.every((f) => typeof f === 'string')) return [topic, fields];
    throw new ConfigError(
      `config key \`json_fields\`: topic \`${topic}\` must map to a list of field names (strings), got ${JSON.stringify(fields)}`,
    );
  });
}

const nonEmpty = (cfg, key) => cfg.string(key) || undefined;

class SplunkHec {
  static init(cfg) {
    const plugin = new SplunkHec();
    plugin.jsonFields = jsonFields(cfg);
    plugin.seedString = cfg.choice('event_format', ['object', 'seed-string']) === 'seed-string';
    plugin.sourcetype = nonEmpty(cfg, 'sourcetype');
    plugin.source = nonEmpty(cfg, 'source');
    plugin.index = nonEmpty(cfg, 'index');
    plugin.host = nonEmpty(cfg, 'host');
    return plugin;
  }

  fieldsFor(topic) {
    for (const [t, names] of this.jsonFields) if (t === topic) return names;
    return [];
  }

  format(group, log) {
    const flat = log.flat();
    const fields = this.fieldsFor(flat.get('__topic__'));
    const body = this.seedString
      ? { tag: 'text', val: seedBody(flat, fields) }
      : { tag: 'json', val: objectBody(flat, fields) };
    const event = hecEvent(body, {
      time: log.timestamp(),
      host: this.host,
      source: this.source,
      sourcetype: this.sourcetype,
      index: this.index,
    });
    return [hec(event)];
  }
}

function objectBody(flat, fields) {
  let out = '{';
  let first = true;
  for (const [key, value] of flat) {
    if (!first) out += ',';
    first = false;
    out += jsonString(key) + ':';
    if (value instanceof TimeNsPart) out += `["${value.ns}"]`;
    else if (fields.length !== 0 && fields.includes(key)) out += embedJson(value);
    else out += jsonString(value);
  }
  return out + '}';
}

// The seed: json.loads each JSON field (keeping the string when it fails), then json.dumps
// the dict with Python's defaults.
function seedBody(flat, fields) {
  const parts = [];
  for (const [key, value] of flat) {
    let text;
    if (value instanceof TimeNsPart) text = `["${value.ns}"]`;
    else if (fields.includes(key)) {
      text = pythonRedump(value) ?? pyString(value);
    } else text = pyString(value);
    parts.push(`${pyString(key)}: ${text}`);
  }
  return `{${parts.join(', ')}}`;
}

export const { init, process } = exportPlugin(SplunkHec, 'splunk-hec', '0.1.0');
