// shipper mini-SDK for JavaScript formatter plugins (componentize-js).
//
// shipper calls a plugin once per SLS log group with the group's protobuf bytes; this module
// decodes them inside the plugin and calls your `format(group, log)` once per log, the same
// contract as the Rust SDK (sdk/):
//
// - `Group`: `topic`, `source`, `tags` (array of [key, value], wire order), `batch`
//   (project, logstore, shard, received), `cache` (a per-call Map for the plugin).
// - `Log`: `time` (Log.Time), `timeNs` (Log.Time_ns or undefined), `contents` (array of
//   [key, value], wire order, keys may repeat), `get(key)` (last wins), `timestamp()`,
//   `flat()` (the official Python SDK's flattened dict that Alibaba's seed scripts format).
// - `format` returns an array of emits (`hec(...)` builds one; [] drops the log) or throws
//   `RecordError` to dead-letter the log.
//
// Error mapping (the WIT contract, as in the Rust SDK's glue): a LogGroup whose framing is
// broken fails the whole call; a log whose own bytes are malformed gets an `invalid-input`
// record error; invalid UTF-8 becomes U+FFFD (TextDecoder, like Rust's from_utf8_lossy);
// ANY other exception thrown by `format` becomes an `internal` record error for that log
// only: an exception escaping an export would trap the component and fail the batch.
//
// Wire facts (docs/plugins.md §3.2 "Wire facts for decoders"): LogGroup.Logs = field 1,
// Topic = 3, Source = 4, LogTags = 6 ({Key = 1, Value = 2}); Log.Time = field 1 (varint),
// Log.Contents = field 2 ({Key = 1, Value = 2}), Log.Time_ns = field 4 (fixed32). Unknown
// fields are skipped; a repeated scalar keeps the last value.

export const SDK_ID = 'shipper-sdk-js/0.1.0';
export const TAG_PREFIX = '__tag__:';
const NANOS_PER_SEC = 1_000_000_000;

/** Throw from `format` to dead-letter one log; kind: 'invalid-input' | 'unsupported' | 'internal'. */
export class RecordError extends Error {
  constructor(message, kind = 'invalid-input') {
    super(message);
    this.kind = kind;
  }
}

/** Throw from `init` to reject the config; the message names the key. */
export class ConfigError extends Error {}

/** Bytes that are not the protobuf message expected; `offset` is within that message. */
export class WireError extends Error {
  constructor(offset, what) {
    super(`${what} at byte ${offset}`);
    this.offset = offset;
    this.what = what;
  }
}

// --- protobuf walking -----------------------------------------------------------------

const VARINT = 0;
const FIXED64 = 1;
const LEN = 2;
const FIXED32 = 5;
// The Rust SDK runs on wasm32 (32-bit lengths): keep its message for absurd lengths.
const MAX_LEN = 0xffffffff;

// ignoreBOM: a leading U+FEFF is data here (TextDecoder would drop it by default).
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/** Reads a varint at `r.pos` (< `end`); numbers up to 2^53 are exact, which covers every
 * tag, length and uint32 SLS sends; longer ones are still consumed and bounds-checked. */
function varint(buf, r, end, base) {
  const start = r.pos;
  let b = start < end ? buf[start] : 0x80;
  if (b < 0x80) {
    r.pos = start + 1;
    return b;
  }
  let value = 0;
  let mul = 1;
  let pos = start;
  for (let shift = 0; shift < 70; shift += 7) {
    if (pos >= end) throw new WireError(start - base, 'truncated varint');
    b = buf[pos++];
    if (shift === 63 && b > 1) break;
    value += (b & 0x7f) * mul;
    mul *= 128;
    if (b < 0x80) {
      r.pos = pos;
      return value;
    }
  }
  throw new WireError(start - base, 'varint longer than 64 bits');
}

/** Walks the fields of the message buf[start:end], calling
 * `visit(number, wire, tagOffset, scalar, payloadStart, payloadEnd)`; offsets relative to
 * `start`. */
function fields(buf, start, end, visit) {
  const r = { pos: start };
  while (r.pos < end) {
    const tagAt = r.pos;
    const tag = varint(buf, r, end, start);
    const number = Math.floor(tag / 8);
    if (number === 0 || number > 0xffffffff) {
      throw new WireError(tagAt - start, 'invalid field number 0');
    }
    const wire = tag % 8;
    let scalar = 0;
    let pStart = r.pos;
    let pEnd = r.pos;
    if (wire === VARINT) {
      scalar = varint(buf, r, end, start);
      pStart = pEnd = r.pos;
    } else if (wire === FIXED64) {
      if (r.pos + 8 > end) throw new WireError(tagAt - start, 'field runs past the end of the message');
      r.pos += 8;
      pStart = pEnd = r.pos;
    } else if (wire === LEN) {
      const len = varint(buf, r, end, start);
      if (len > MAX_LEN) throw new WireError(tagAt - start, 'length does not fit in memory');
      if (r.pos + len > end) throw new WireError(tagAt - start, 'field runs past the end of the message');
      pStart = r.pos;
      pEnd = r.pos + len;
      r.pos = pEnd;
    } else if (wire === FIXED32) {
      if (r.pos + 4 > end) throw new WireError(tagAt - start, 'field runs past the end of the message');
      const p = r.pos;
      scalar = (buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16) | (buf[p + 3] << 24)) >>> 0;
      r.pos += 4;
      pStart = pEnd = r.pos;
    } else {
      throw new WireError(tagAt - start, 'unsupported wire type (groups are not used by SLS)');
    }
    visit(number, wire, tagAt - start, scalar, pStart, pEnd);
  }
}

function text(buf, start, end) {
  return start === end ? '' : decoder.decode(buf.subarray(start, end));
}

/** [key, value] of a {Key = 1, Value = 2} message; a missing one reads as ''. */
function keyValue(buf, start, end) {
  // Fast path: what every SDK writes, `0a len key 12 len value` with one-byte lengths.
  if (buf[start] === 0x0a && start + 2 <= end) {
    const klen = buf[start + 1];
    const vtag = start + 2 + klen;
    if (klen < 0x80 && vtag + 2 <= end && buf[vtag] === 0x12) {
      const vlen = buf[vtag + 1];
      if (vlen < 0x80 && vtag + 2 + vlen === end) {
        return [text(buf, start + 2, vtag), text(buf, vtag + 2, end)];
      }
    }
  }
  let key = '';
  let value = '';
  fields(buf, start, end, (number, wire, tagAt, _scalar, pStart, pEnd) => {
    if (number === 1 || number === 2) {
      if (wire !== LEN) throw new WireError(tagAt, 'key/value is not length-delimited');
      if (number === 1) key = text(buf, pStart, pEnd);
      else value = text(buf, pStart, pEnd);
    }
  });
  return [key, value];
}

/** `__time_ns_part__`: the SDK stores the 1-tuple (str(Time_ns),); as JSON ["123456789"]. */
export class TimeNsPart {
  constructor(ns) {
    this.ns = ns;
  }
}

/** Metadata shared by every log of one call. */
export class Group {
  constructor(batch, topic, source, tags) {
    this.batch = batch;
    this.topic = topic;
    this.source = source;
    this.tags = tags;
    this.cache = new Map();
  }

  /** The value of tag `key` (without `__tag__:`); the last one wins. */
  tag(key) {
    for (let i = this.tags.length - 1; i >= 0; i--) {
      if (this.tags[i][0] === key) return this.tags[i][1];
    }
    return undefined;
  }
}

/** One decoded log. */
export class Log {
  constructor(group, time, timeNs, contents) {
    this.group = group;
    this.time = time;
    this.timeNs = timeNs;
    this.contents = contents;
  }

  /** The value of content `key`; the last one wins when a key repeats. */
  get(key) {
    for (let i = this.contents.length - 1; i >= 0; i--) {
      if (this.contents[i][0] === key) return this.contents[i][1];
    }
    return undefined;
  }

  /** Log.Time + Log.Time_ns as a WIT timestamp (nanos >= 1e9 carry into the seconds). */
  timestamp() {
    const ns = this.timeNs ?? 0;
    return {
      seconds: BigInt(this.time + Math.floor(ns / NANOS_PER_SEC)),
      nanos: ns % NANOS_PER_SEC,
    };
  }

  /** The official SDK's flattened dict of this log minus `__time__`, as a Map (insertion
   * order = the dict's order): `__topic__`, `__source__`, `__time_ns_part__` (only when
   * non-zero, as a TimeNsPart), `__tag__:<k>` per tag, then the contents; a later duplicate
   * overwrites the value in place. */
  flat() {
    const g = this.group;
    const d = new Map();
    d.set('__topic__', g.topic);
    d.set('__source__', g.source);
    if (this.timeNs) d.set('__time_ns_part__', new TimeNsPart(this.timeNs));
    for (const [k, v] of g.tags) d.set(TAG_PREFIX + k, v);
    for (const [k, v] of this.contents) d.set(k, v);
    d.delete('__time__');
    return d;
  }
}

function scanGroup(buf) {
  let topic = '';
  let source = '';
  const tags = [];
  const logs = [];
  fields(buf, 0, buf.length, (number, wire, tagAt, _scalar, pStart, pEnd) => {
    if ((number === 1 || number === 3 || number === 4 || number === 6) && wire !== LEN) {
      throw new WireError(tagAt, 'LogGroup field is not length-delimited');
    }
    if (number === 1) logs.push(pStart, pEnd);
    else if (number === 3) topic = text(buf, pStart, pEnd);
    else if (number === 4) source = text(buf, pStart, pEnd);
    else if (number === 6) {
      try {
        tags.push(keyValue(buf, pStart, pEnd));
      } catch (e) {
        // The Rust SDK reports these against the tag field's start.
        if (e instanceof WireError) throw new WireError(tagAt + e.offset, e.what);
        throw e;
      }
    }
  });
  return { topic, source, tags, logs };
}

/** A length varint of at most two bytes at `pos`: [value, next], or undefined. */
function shortLen(buf, pos, end) {
  if (pos >= end) return undefined;
  const b = buf[pos];
  if (b < 0x80) return [b, pos + 1];
  if (pos + 1 >= end || buf[pos + 1] >= 0x80) return undefined;
  return [(b & 0x7f) | (buf[pos + 1] << 7), pos + 2];
}

const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The common shape every SDK writes (Time, Contents of `0a len key 12 len value`,
 * Time_ns; lengths under 16 KiB; valid UTF-8) without the generic walker and its
 * callbacks; undefined hands anything else to decodeLogSlow, which gives the same answer
 * for what this accepts and the exact error for the rest. */
function decodeLogFast(buf, start, end) {
  let pos = start;
  let time;
  let timeNs;
  const contents = [];
  try {
    while (pos < end) {
      const t = buf[pos];
      if (t === 0x12) {
        const l = shortLen(buf, pos + 1, end);
        if (l === undefined) return undefined;
        const p = l[1];
        const q = p + l[0];
        if (q > end || l[0] < 4 || buf[p] !== 0x0a) return undefined;
        const k = shortLen(buf, p + 1, q);
        if (k === undefined) return undefined;
        const vt = k[1] + k[0];
        if (vt >= q || buf[vt] !== 0x12) return undefined;
        const v = shortLen(buf, vt + 1, q);
        if (v === undefined || v[1] + v[0] !== q) return undefined;
        contents.push([
          k[0] === 0 ? '' : strictDecoder.decode(buf.subarray(k[1], vt)),
          v[0] === 0 ? '' : strictDecoder.decode(buf.subarray(v[1], q)),
        ]);
        pos = q;
      } else if (t === 0x08) {
        let value = 0;
        let mul = 1;
        pos++;
        for (;;) {
          if (pos >= end || mul > 2 ** 35) return undefined;
          const b = buf[pos++];
          value += (b & 0x7f) * mul;
          if (b < 0x80) break;
          mul *= 128;
        }
        time = value % 0x100000000;
      } else if (t === 0x25) {
        if (pos + 5 > end) return undefined;
        timeNs = (buf[pos + 1] | (buf[pos + 2] << 8) | (buf[pos + 3] << 16) | (buf[pos + 4] << 24)) >>> 0;
        pos += 5;
      } else return undefined;
    }
  } catch {
    return undefined; // invalid UTF-8: the slow path repairs it
  }
  return time === undefined ? undefined : { time, timeNs, contents };
}

function decodeLog(buf, start, end) {
  return decodeLogFast(buf, start, end) ?? decodeLogSlow(buf, start, end);
}

function decodeLogSlow(buf, start, end) {
  let time;
  let timeNs;
  const contents = [];
  fields(buf, start, end, (number, wire, tagAt, scalar, pStart, pEnd) => {
    if (number === 1) {
      if (wire !== VARINT) throw new WireError(tagAt, 'Log.Time is not a varint');
      // uint32 in the schema: parsers keep the low 32 bits of a wider varint.
      time = scalar % 0x100000000;
    } else if (number === 2) {
      if (wire !== LEN) throw new WireError(tagAt, 'Log.Contents is not length-delimited');
      try {
        contents.push(keyValue(buf, pStart, pEnd));
      } catch (e) {
        if (e instanceof WireError) throw new WireError(pStart - start + e.offset, e.what);
        throw e;
      }
    } else if (number === 4) {
      if (wire !== FIXED32) throw new WireError(tagAt, 'Log.Time_ns is not fixed32');
      timeNs = scalar;
    }
  });
  if (time === undefined) throw new WireError(0, 'Log.Time (field 1, required) is missing');
  return { time, timeNs, contents };
}

// --- JSON ------------------------------------------------------------------------------

/** A JSON string with shipper's escaping (docs/rendering.md §2 "Rendering rules"): `"`,
 * `\` and control characters (\n \r \t \b \f, others \u00xx lower case); non-ASCII as is.
 * The strings here come from UTF-8, so JSON.stringify escapes exactly that. */
export const jsonString = (s) => JSON.stringify(s);

export const MAX_DEPTH = 128;

/** Whether arrays/objects in `text` nest deeper than `limit` (strings skipped). */
function nestingExceeds(text, limit) {
  let depth = 0;
  let inString = false;
  let escaped = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (escaped) escaped = false;
      else if (c === 0x5c) escaped = true;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

function countBrackets(text) {
  let n = 0;
  for (let i = text.indexOf('[') ; i !== -1; i = text.indexOf('[', i + 1)) n++;
  for (let i = text.indexOf('{'); i !== -1; i = text.indexOf('{', i + 1)) n++;
  return n;
}

/** Whether `text` may nest deeper than MAX_DEPTH (cheap filter, then an exact scan). */
export function tooDeep(text) {
  return countBrackets(text) > MAX_DEPTH && nestingExceeds(text, MAX_DEPTH);
}

const LONE_SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

function hasLoneSurrogate(value) {
  const stack = [value];
  while (stack.length) {
    const v = stack.pop();
    if (typeof v === 'string') {
      if (!v.isWellFormed()) return true;
    } else if (Array.isArray(v)) {
      for (const x of v) stack.push(x);
    } else if (v !== null && typeof v === 'object') {
      for (const k of Object.keys(v)) {
        stack.push(k);
        stack.push(v[k]);
      }
    }
  }
  return false;
}

/** Whether `text` is one strict JSON value (RFC 8259, optional surrounding whitespace), as
 * the Rust SDK's validator decides: no lone surrogate escapes, at most 128 levels. */
export function isStrictJson(text) {
  if (tooDeep(text)) return false;
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    return false;
  }
  return !(LONE_SURROGATE_ESCAPE.test(text) && hasLoneSurrogate(value));
}

/** `text` without surrounding JSON whitespace (space, tab, LF, CR). */
export function trimWs(text) {
  let a = 0;
  let b = text.length;
  const ws = (c) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
  while (a < b && ws(text.charCodeAt(a))) a++;
  while (b > a && ws(text.charCodeAt(b - 1))) b--;
  return a === 0 && b === text.length ? text : text.slice(a, b);
}

/** `text` verbatim (trimmed) when it is strict JSON, else as a JSON string. */
export function embedJson(text) {
  const trimmed = trimWs(text);
  return trimmed !== '' && isStrictJson(trimmed) ? trimmed : jsonString(text);
}

// --- config ------------------------------------------------------------------------------

/** "a string", "an object"… for messages about config values. */
export function kindOf(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'boolean') return 'a boolean';
  if (typeof value === 'number') return 'a number';
  return 'a string';
}

/** The plugin's JSON config, consumed key by key; keys left unread are refused. (JSON.parse
 * keeps the last of repeated keys, as the Rust SDK's getters do.) */
export class Config {
  constructor(text) {
    let value;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new ConfigError(`plugin config is not valid JSON: ${e.message}`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new ConfigError(`plugin config must be a JSON object, got ${kindOf(value)}`);
    }
    this.members = new Map(Object.entries(value));
    this.known = [];
  }

  /** The value of `key`; undefined when absent or null. */
  take(key) {
    this.known.push(key);
    const value = this.members.get(key);
    this.members.delete(key);
    return value === null ? undefined : value;
  }

  /** A string value, or undefined. */
  string(key) {
    const value = this.take(key);
    if (value === undefined || typeof value === 'string') return value;
    throw new ConfigError(`config key \`${key}\`: expected a string, got ${kindOf(value)}`);
  }

  /** A string that is one of `allowed`, or undefined. */
  choice(key, allowed) {
    const value = this.string(key);
    if (value === undefined || allowed.includes(value)) return value;
    throw new ConfigError(`config key \`${key}\`: \`${value}\` is not one of: ${allowed.join(', ')}`);
  }

  /** Refuses a key nobody took (called by the glue after `init`). */
  finish() {
    const first = this.members.keys().next();
    if (first.done) return;
    const known = [...new Set(this.known)].sort();
    if (known.length === 0) {
      throw new ConfigError(`unknown config key \`${first.value}\`: this plugin takes no config`);
    }
    throw new ConfigError(`unknown config key \`${first.value}\`; known keys here: ${known.join(', ')}`);
  }
}

// --- emits -------------------------------------------------------------------------------

/** An emit carrying an HEC event (`route`: a sink name, or undefined for the default). */
export function hec(event, route = undefined) {
  return { route, payload: { tag: 'hec', val: event } };
}

/** An HEC event; `body` is `{ tag: 'json', val: text }` or `{ tag: 'text', val: text }`. */
export function hecEvent(body, { time, host, source, sourcetype, index } = {}) {
  return { body, time, host, source, sourcetype, index, fields: [] };
}

// --- the export glue -------------------------------------------------------------------------

function describe(e) {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** The `init` and `process` exports for a plugin class with a static
 * `init(config: Config)` returning the plugin and a `format(group, log)` method. Use it as
 * `export const { init, process } = exportPlugin(MyPlugin, 'name', '1.0.0');`. */
export function exportPlugin(PluginClass, name, version) {
  let plugin;
  function init(configText) {
    try {
      const cfg = new Config(configText);
      const built = PluginClass.init(cfg);
      cfg.finish();
      plugin = built;
    } catch (e) {
      // A thrown string is the WIT `err(string)` of init.
      throw e instanceof ConfigError ? e.message : `init threw ${describe(e)}`;
    }
    return { name, version, sdk: SDK_ID };
  }

  function process(batch, group) {
    if (plugin === undefined) throw '`process` was called before a successful `init`';
    let header;
    try {
      header = scanGroup(group);
    } catch (e) {
      if (e instanceof WireError) {
        throw `the LogGroup passed to \`process\` is not valid protobuf (${e.message}); this is a host bug or corrupt data`;
      }
      throw `decoding the LogGroup threw ${describe(e)}`;
    }
    const g = new Group(batch, header.topic, header.source, header.tags);
    const logs = header.logs;
    const results = new Array(logs.length / 2);
    for (let i = 0; i < logs.length; i += 2) {
      let decoded;
      try {
        decoded = decodeLog(group, logs[i], logs[i + 1]);
      } catch (e) {
        results[i / 2] =
          e instanceof WireError
            ? { tag: 'err', val: { kind: 'invalid-input', message: `the log is not a valid SLS Log message: ${e.message}` } }
            : { tag: 'err', val: { kind: 'internal', message: `the plugin threw ${describe(e)}` } };
        continue;
      }
      try {
        const log = new Log(g, decoded.time, decoded.timeNs, decoded.contents);
        results[i / 2] = { tag: 'ok', val: plugin.format(g, log) };
      } catch (e) {
        results[i / 2] =
          e instanceof RecordError
            ? { tag: 'err', val: { kind: e.kind, message: e.message } }
            : { tag: 'err', val: { kind: 'internal', message: `the plugin threw ${describe(e)}` } };
      }
    }
    return results;
  }

  return { init, process };
}
