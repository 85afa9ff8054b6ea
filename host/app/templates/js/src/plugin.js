// {{name}}: a shipper formatter plugin.
//
// Each SLS log becomes one Splunk HEC event: the log's contents as a JSON object, in wire
// order, with the log's time, the log group's source, and `sourcetype` and `index` from the
// plugin's config (`[plugin.config]` in shipper's config file; both optional). A log without
// contents is refused with a record error: shipper writes it to the dead-letter file and ships
// the rest of its batch.
//
// Sample input (samples/input.jsonl, one flattened log per line):
//
//   {"__time__": 1700000000, "__time_ns_part__": [123456789], "__source__": "10.0.0.1", "level": "info", "message": "user alice signed in"}
//
// with config {"sourcetype": "my:app", "index": "main"} becomes (samples/golden.txt):
//
//   {"time":1700000000.123456,"source":"10.0.0.1","sourcetype":"my:app","index":"main","event":{"level":"info","message":"user alice signed in"}}

import { RecordError, exportPlugin, hec, hecEvent, jsonString } from '../sdk/shipper_sdk.js';

class Formatter {
  // Keys not read here are refused after init ("unknown config key ..."), so a typo in
  // [plugin.config] fails at start-up instead of being ignored.
  static init(cfg) {
    const plugin = new Formatter();
    plugin.sourcetype = cfg.string('sourcetype');
    plugin.index = cfg.string('index');
    return plugin;
  }

  format(group, log) {
    if (log.contents.length === 0) throw new RecordError('the log has no contents');
    const members = log.contents.map(([key, value]) => `${jsonString(key)}:${jsonString(value)}`);
    const event = hecEvent(
      { tag: 'json', val: `{${members.join(',')}}` },
      { time: log.timestamp(), source: group.source, sourcetype: this.sourcetype, index: this.index },
    );
    return [hec(event)];
  }
}

export const { init, process } = exportPlugin(Formatter, '{{name}}', '0.1.0');
