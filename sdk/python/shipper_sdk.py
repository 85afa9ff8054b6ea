"""shipper mini-SDK for Python formatter plugins (componentize-py).

shipper calls a plugin once per SLS log group with the group's protobuf bytes; this module
decodes them inside the plugin and calls your ``format(group, log)`` once per log, the same
contract as the Rust SDK (``sdk/``):

- ``Group``: ``topic``, ``source``, ``tags`` (list of ``(key, value)``, wire order),
  ``batch`` (project, logstore, shard, received).
- ``Log``: ``time`` (``Log.Time``), ``time_ns`` (``Log.Time_ns`` or ``None``),
  ``contents`` (list of ``(key, value)``, wire order, keys may repeat), ``get(key)``
  (last value wins), ``timestamp()``, ``flat()`` (the official Python SDK's flattened dict
  that Alibaba's seed scripts format).
- ``format`` returns a list of emits (``hec(...)`` below builds an HEC one, ``Emit`` with
  ``PayloadSyslog``/``PayloadRaw`` the others; an empty list drops the log) or raises
  ``RecordError`` to dead-letter the log.

Error mapping (the WIT contract, as in the Rust SDK's glue): a LogGroup whose framing is
broken fails the whole call; a log whose own bytes are malformed gets an ``invalid-input``
record error; invalid UTF-8 is replaced by U+FFFD; ANY other exception raised by
``format`` becomes an ``internal`` record error for that log only. An exception escaping
an export would trap the component (componentize-py turns it into a panic), which poisons
the instance and fails the whole batch, so nothing escapes.

Wire facts (docs/plugins.md §3.2 "Wire facts for decoders"): ``LogGroup.Logs`` = field 1,
``Topic`` = 3, ``Source`` = 4, ``LogTags`` = 6 (``{Key = 1, Value = 2}``); ``Log.Time`` =
field 1 (varint), ``Log.Contents`` = field 2 (``{Key = 1, Value = 2}``), ``Log.Time_ns`` =
field 4 (fixed32). Unknown fields are skipped; a repeated scalar keeps the last value.
"""

import json
import re

import wit_world
from componentize_py_types import Err, Ok
from wit_world.imports import types as _t

SDK_ID = "shipper-sdk-python/0.1.0"
NANOS_PER_SEC = 1_000_000_000
TAG_PREFIX = "__tag__:"

# Re-exported WIT types, so plugins need only this module.
Timestamp = _t.Timestamp
HecEvent = _t.HecEvent
HecBodyJson = _t.HecBody_Json
HecBodyText = _t.HecBody_Text
Emit = _t.Emit
PayloadHec = _t.Payload_Hec
PayloadSyslog = _t.Payload_Syslog
PayloadRaw = _t.Payload_Raw
SyslogMessage = _t.SyslogMessage
Severity = _t.Severity
ErrorKind = _t.ErrorKind


class RecordError(Exception):
    """Raise from ``format`` to dead-letter one log with a reason."""

    def __init__(self, message, kind=ErrorKind.INVALID_INPUT):
        super().__init__(message)
        self.kind = kind
        self.message = message

    def to_wit(self):
        return _t.RecordError(kind=self.kind, message=self.message)


class ConfigError(Exception):
    """Raise from ``init`` to reject the config; the message names the key."""


class WireError(Exception):
    """Bytes that are not the protobuf message expected; ``offset`` is within it."""

    def __init__(self, offset, what):
        super().__init__(f"{what} at byte {offset}")
        self.offset = offset
        self.what = what


# --- protobuf walking ---------------------------------------------------------------

_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5
# On wasm32 the Rust SDK's lengths are 32-bit; keep its message for absurd lengths.
_MAX_LEN = 0xFFFF_FFFF


def _varint(buf, pos, end, base):
    """(value, new position); ``base`` turns positions into message offsets."""
    start = pos
    if pos < end:
        b = buf[pos]
        if b < 0x80:
            return b, pos + 1
    value = 0
    shift = 0
    while shift < 70:
        if pos >= end:
            raise WireError(start - base, "truncated varint")
        b = buf[pos]
        pos += 1
        if shift == 63 and b > 1:
            break
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
    raise WireError(start - base, "varint longer than 64 bits")


def _fields(buf, start, end):
    """Yields ``(number, wire_type, tag_offset, scalar, payload_start, payload_end)`` for
    each field of the message ``buf[start:end]``; offsets are relative to ``start``."""
    pos = start
    while pos < end:
        tag_at = pos
        tag, pos = _varint(buf, pos, end, start)
        number = tag >> 3
        if number == 0 or number > 0xFFFF_FFFF:
            raise WireError(tag_at - start, "invalid field number 0")
        wire = tag & 7
        scalar = 0
        p_start = p_end = pos
        if wire == _VARINT:
            scalar, pos = _varint(buf, pos, end, start)
            p_start = p_end = pos
        elif wire == _FIXED64:
            if pos + 8 > end:
                raise WireError(tag_at - start, "field runs past the end of the message")
            pos += 8
            p_start = p_end = pos
        elif wire == _LEN:
            length, pos = _varint(buf, pos, end, start)
            if length > _MAX_LEN:
                raise WireError(tag_at - start, "length does not fit in memory")
            if pos + length > end:
                raise WireError(tag_at - start, "field runs past the end of the message")
            p_start, p_end = pos, pos + length
            pos = p_end
        elif wire == _FIXED32:
            if pos + 4 > end:
                raise WireError(tag_at - start, "field runs past the end of the message")
            scalar = int.from_bytes(buf[pos:pos + 4], "little")
            pos += 4
            p_start = p_end = pos
        else:
            raise WireError(
                tag_at - start, "unsupported wire type (groups are not used by SLS)"
            )
        yield number, wire, tag_at - start, scalar, p_start, p_end


def _text(buf, start, end):
    raw = buf[start:end]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Same as Rust's from_utf8_lossy: one U+FFFD per maximal invalid subpart.
        return raw.decode("utf-8", "replace")


def _key_value(buf, start, end):
    """``(key, value)`` of a ``{Key = 1, Value = 2}`` message; a missing one reads as ''."""
    key = value = ""
    for number, wire, tag_at, _, p_start, p_end in _fields(buf, start, end):
        if number == 1 or number == 2:
            if wire != _LEN:
                raise WireError(tag_at, "key/value is not length-delimited")
            if number == 1:
                key = _text(buf, p_start, p_end)
            else:
                value = _text(buf, p_start, p_end)
    return key, value


class _Batch:
    __slots__ = ("project", "logstore", "shard", "received")


class Group:
    """The metadata shared by every log of one call."""

    __slots__ = ("batch", "topic", "source", "tags", "cache")

    def __init__(self, batch, topic, source, tags):
        self.batch = batch
        self.topic = topic
        self.source = source
        self.tags = tags
        # Per-call scratch space for plugins (e.g. text rendered once per group).
        self.cache = {}

    def tag(self, key):
        """The value of tag ``key`` (without ``__tag__:``); the last one wins."""
        for k, v in reversed(self.tags):
            if k == key:
                return v
        return None


class Log:
    """One decoded log."""

    __slots__ = ("time", "time_ns", "contents", "group")

    def __init__(self, group, time, time_ns, contents):
        self.group = group
        self.time = time
        self.time_ns = time_ns
        self.contents = contents

    def get(self, key):
        """The value of content ``key``; the last one wins when a key repeats."""
        for k, v in reversed(self.contents):
            if k == key:
                return v
        return None

    def timestamp(self):
        """``Log.Time`` + ``Log.Time_ns`` as a WIT timestamp (nanos >= 1e9 carry over)."""
        ns = self.time_ns or 0
        return Timestamp(seconds=self.time + ns // NANOS_PER_SEC, nanos=ns % NANOS_PER_SEC)

    def flat(self):
        """The official SDK's flattened dict of this log minus ``__time__`` (what the seed
        scripts format): ``__topic__``, ``__source__``, ``__time_ns_part__`` (only when
        non-zero, as ``TimeNsPart``), ``__tag__:<k>`` per tag, then the contents; a later
        duplicate overwrites the value and keeps the first position."""
        g = self.group
        d = {"__topic__": g.topic, "__source__": g.source}
        if self.time_ns:
            d["__time_ns_part__"] = TimeNsPart(self.time_ns)
        for k, v in g.tags:
            d[TAG_PREFIX + k] = v
        for k, v in self.contents:
            d[k] = v
        d.pop("__time__", None)
        return d


class TimeNsPart(int):
    """``__time_ns_part__``: the SDK stores the 1-tuple ``(str(Time_ns),)``; as JSON it
    is ``["123456789"]``."""

    __slots__ = ()

    def as_tuple(self):
        return (str(int(self)),)


def _scan_group(buf):
    topic = source = ""
    tags = []
    logs = []
    for number, wire, tag_at, _, p_start, p_end in _fields(buf, 0, len(buf)):
        if number in (1, 3, 4, 6) and wire != _LEN:
            raise WireError(tag_at, "LogGroup field is not length-delimited")
        if number == 1:
            logs.append((p_start, p_end))
        elif number == 3:
            topic = _text(buf, p_start, p_end)
        elif number == 4:
            source = _text(buf, p_start, p_end)
        elif number == 6:
            try:
                tags.append(_key_value(buf, p_start, p_end))
            except WireError as e:
                # The Rust SDK reports these against the tag field's start.
                raise WireError(tag_at + e.offset, e.what) from None
    return topic, source, tags, logs


def _decode_log(buf, start, end):
    """``(time, time_ns, contents)`` of one ``Log``, or raises ``WireError``."""
    fast = _decode_log_fast(buf, start, end)
    return fast if fast is not None else _decode_log_slow(buf, start, end)


def _short_len(buf, pos, end):
    """A length varint of at most two bytes at ``pos``: ``(value, next)``, or ``None``."""
    if pos >= end:
        return None
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    if pos + 1 >= end or buf[pos + 1] >= 0x80:
        return None
    return (b & 0x7F) | (buf[pos + 1] << 7), pos + 2


def _decode_log_fast(buf, start, end):
    """The common shape every SDK writes (``Time``, ``Contents`` of ``0a len key 12 len
    value``, ``Time_ns``; lengths under 16 KiB; valid UTF-8) without the generic walker;
    ``None`` hands anything else to ``_decode_log_slow``, which gives the same answer for
    what this accepts and the exact error for the rest. The per-field generator costs
    most of the decoding time in the interpreter."""
    pos = start
    time = None
    time_ns = None
    contents = []
    append = contents.append
    while pos < end:
        t = buf[pos]
        if t == 0x12:
            # One-byte lengths inline (the usual case), two-byte ones through _short_len.
            length = buf[pos + 1] if pos + 1 < end else 0x80
            if length < 0x80:
                p = pos + 2
            else:
                got = _short_len(buf, pos + 1, end)
                if got is None:
                    return None
                length, p = got
            q = p + length
            if q > end or length < 4 or buf[p] != 0x0A:
                return None
            klen = buf[p + 1]
            if klen < 0x80:
                k = p + 2
            else:
                got = _short_len(buf, p + 1, q)
                if got is None:
                    return None
                klen, k = got
            vt = k + klen
            if vt + 1 >= q or buf[vt] != 0x12:
                return None
            vlen = buf[vt + 1]
            if vlen < 0x80:
                v = vt + 2
            else:
                got = _short_len(buf, vt + 1, q)
                if got is None:
                    return None
                vlen, v = got
            if v + vlen != q:
                return None
            try:
                append((buf[k:vt].decode("utf-8"), buf[v:q].decode("utf-8")))
            except UnicodeDecodeError:
                return None
            pos = q
        elif t == 0x08:
            value = 0
            shift = 0
            pos += 1
            while True:
                if pos >= end or shift > 35:
                    return None
                b = buf[pos]
                pos += 1
                value |= (b & 0x7F) << shift
                if b < 0x80:
                    break
                shift += 7
            time = value & 0xFFFF_FFFF
        elif t == 0x25:
            if pos + 5 > end:
                return None
            time_ns = int.from_bytes(buf[pos + 1:pos + 5], "little")
            pos += 5
        else:
            return None
    if time is None:
        return None
    return time, time_ns, contents


def _decode_log_slow(buf, start, end):
    time = None
    time_ns = None
    contents = []
    for number, wire, tag_at, scalar, p_start, p_end in _fields(buf, start, end):
        if number == 1:
            if wire != _VARINT:
                raise WireError(tag_at, "Log.Time is not a varint")
            time = scalar & 0xFFFF_FFFF
        elif number == 2:
            if wire != _LEN:
                raise WireError(tag_at, "Log.Contents is not length-delimited")
            try:
                contents.append(_key_value(buf, p_start, p_end))
            except WireError as e:
                raise WireError(p_start - start + e.offset, e.what) from None
        elif number == 4:
            if wire != _FIXED32:
                raise WireError(tag_at, "Log.Time_ns is not fixed32")
            time_ns = scalar
    if time is None:
        raise WireError(0, "Log.Time (field 1, required) is missing")
    return time, time_ns, contents


# --- JSON ----------------------------------------------------------------------------

# JSON string with shipper's escaping (docs/rendering.md §2 "Rendering rules"): `"`, `\` and
# control characters (\n \r \t \b \f, others \u00xx lower case); non-ASCII as is. CPython's
# encode_basestring (ensure_ascii=False) escapes exactly that.
json_string = json.encoder.encode_basestring

MAX_DEPTH = 128
_LONE_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _reject_constant(name):
    raise ValueError(name)


def _ignore(_text):
    return None


def _nesting_exceeds(text, limit):
    """Whether arrays/objects in ``text`` nest deeper than ``limit`` (strings skipped)."""
    depth = 0
    in_string = False
    escaped = False
    for c in text:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == "[" or c == "{":
            depth += 1
            if depth > limit:
                return True
        elif c == "]" or c == "}":
            depth -= 1
    return False


def _has_lone_surrogate(value):
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False


def _deep(text):
    # Cheap filter first: only text with many brackets can nest too deep.
    return text.count("[") + text.count("{") > MAX_DEPTH and _nesting_exceeds(
        text, MAX_DEPTH
    )


def is_strict_json(text):
    """Whether ``text`` is one strict JSON value (RFC 8259, optional surrounding
    whitespace), as the Rust SDK's validator decides: no NaN/Infinity, no lone surrogate
    escapes, at most 128 levels of nesting."""
    if _deep(text):
        return False
    try:
        value = json.loads(
            text, parse_constant=_reject_constant, parse_int=_ignore, parse_float=_ignore
        )
    except Exception:
        return False
    if _LONE_SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        return False
    return True


def trim_ws(text):
    """``text`` without surrounding JSON whitespace (space, tab, LF, CR)."""
    return text.strip(" \t\n\r")


def embed_json(text):
    """``text`` verbatim (trimmed) when it is strict JSON, else as a JSON string."""
    trimmed = trim_ws(text)
    if trimmed and is_strict_json(trimmed):
        return trimmed
    return json_string(text)


def python_loads(text):
    """``json.loads(text)`` as the seed script calls it, or raises; refuses nesting deeper
    than 128 levels like the Rust SDK (and so never recurses deep in the guest)."""
    if _deep(text):
        raise ValueError("nested too deeply")
    return json.loads(text)


# --- config --------------------------------------------------------------------------


class JsonObject(list):
    """A JSON object from the config: its ``(key, value)`` pairs in order, repeats kept
    (the Rust SDK's ``Value::Object``); arrays are plain lists."""


def kind_of(value):
    """``a string``, ``an object``… for messages about config values."""
    if isinstance(value, JsonObject):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "a string"


class Config:
    """The plugin's JSON config, consumed key by key; keys left unread are refused."""

    def __init__(self, text):
        try:
            value = json.loads(
                text, object_pairs_hook=JsonObject, parse_constant=_reject_constant
            )
        except Exception as e:
            raise ConfigError(f"plugin config is not valid JSON: {e}") from None
        if not isinstance(value, JsonObject):
            raise ConfigError(f"plugin config must be a JSON object, got {kind_of(value)}")
        self._members = list(value)
        self._known = []

    def take(self, key):
        """The value of ``key`` (the last one when repeated); ``None`` when absent/null."""
        self._known.append(key)
        found = None
        rest = []
        for k, v in self._members:
            if k == key:
                found = v
            else:
                rest.append((k, v))
        self._members = rest
        return found

    def string(self, key):
        """A string value, or ``None``."""
        value = self.take(key)
        if value is None or isinstance(value, str):
            return value
        raise ConfigError(f"config key `{key}`: expected a string, got {kind_of(value)}")

    def choice(self, key, allowed):
        """A string that is one of ``allowed``, or ``None``."""
        value = self.string(key)
        if value is None or value in allowed:
            return value
        raise ConfigError(f"config key `{key}`: `{value}` is not one of: {', '.join(allowed)}")

    def finish(self):
        """Refuses a key nobody took (called by the glue after ``init``)."""
        if not self._members:
            return
        key = self._members[0][0]
        known = sorted(set(self._known))
        if not known:
            raise ConfigError(f"unknown config key `{key}`: this plugin takes no config")
        raise ConfigError(f"unknown config key `{key}`; known keys here: {', '.join(known)}")


# --- emits ---------------------------------------------------------------------------


def hec(event, route=None):
    """An emit carrying an HEC event."""
    return Emit(route=route, payload=PayloadHec(event))


def hec_event(body, time=None, host=None, source=None, sourcetype=None, index=None):
    """An HEC event; ``body`` is ``HecBodyJson(text)`` or ``HecBodyText(text)``."""
    return HecEvent(
        body=body,
        time=time,
        host=host,
        source=source,
        sourcetype=sourcetype,
        index=index,
        fields=[],
    )


# --- the export glue -----------------------------------------------------------------


def _internal(e):
    return _t.RecordError(
        kind=ErrorKind.INTERNAL,
        message=f"the plugin raised {type(e).__name__}: {e}",
    )


def export(plugin_class, name, version):
    """The ``WitWorld`` class componentize-py exports, for a plugin class with
    ``plugin_class.init(config: Config) -> plugin`` and ``plugin.format(group, log)``.
    Use it as ``WitWorld = shipper_sdk.export(MyPlugin, "name", "1.0.0")`` in the app
    module."""

    class WitWorld(wit_world.WitWorld):
        plugin = None

        def init(self, config):
            try:
                cfg = Config(config)
                plugin = plugin_class.init(cfg)
                cfg.finish()
            except ConfigError as e:
                raise Err(str(e)) from None
            except Exception as e:
                raise Err(f"init raised {type(e).__name__}: {e}") from None
            WitWorld.plugin = plugin
            return _t.PluginInfo(name=name, version=version, sdk=SDK_ID)

        def process(self, batch, group):
            plugin = WitWorld.plugin
            if plugin is None:
                raise Err("`process` was called before a successful `init`")
            try:
                topic, source, tags, logs = _scan_group(group)
            except WireError as e:
                raise Err(
                    f"the LogGroup passed to `process` is not valid protobuf ({e}); "
                    "this is a host bug or corrupt data"
                ) from None
            except Exception as e:
                raise Err(f"decoding the LogGroup raised {type(e).__name__}: {e}") from None
            g = Group(batch, topic, source, tags)
            results = []
            append = results.append
            fmt = plugin.format
            for start, end in logs:
                try:
                    time, time_ns, contents = _decode_log(group, start, end)
                except WireError as e:
                    append(
                        Err(
                            _t.RecordError(
                                kind=ErrorKind.INVALID_INPUT,
                                message=f"the log is not a valid SLS Log message: {e}",
                            )
                        )
                    )
                    continue
                except Exception as e:
                    append(Err(_internal(e)))
                    continue
                try:
                    append(Ok(fmt(g, Log(g, time, time_ns, contents))))
                except RecordError as e:
                    append(Err(e.to_wit()))
                except Exception as e:
                    append(Err(_internal(e)))
            return results

    return WitWorld
