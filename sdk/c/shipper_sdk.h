/*
 * shipper mini-SDK for C formatter plugins (clang --target=wasm32-wasi + wit-bindgen C
 * bindings + the WASI preview1 adapter).
 *
 * shipper calls a plugin once per SLS log group with the group's protobuf bytes; this SDK
 * decodes them inside the plugin (zero-copy: strings point into the input) and calls your
 * `plugin_format` once per log, the same contract as the Rust SDK (sdk/). A plugin
 * defines:
 *
 *   const char *const PLUGIN_NAME, *const PLUGIN_VERSION;
 *   char *plugin_init(sh_config *cfg, void **state);          // NULL or a malloc'd error
 *   bool plugin_format(void *state, const sh_group *g, const sh_log *log,
 *                      sh_emits *out, sh_record_error *err);  // false = dead-letter log
 *
 * Error mapping (the WIT contract, as in the Rust SDK's glue): a LogGroup whose framing is
 * broken fails the whole call; a log whose own bytes are malformed gets an `invalid-input`
 * record error; invalid UTF-8 is replaced by U+FFFD per maximal invalid subpart (as Rust's
 * from_utf8_lossy does). C has no exceptions: a crash (abort, out-of-bounds access) traps
 * the component, the host discards the instance and isolates the log, so return `false`
 * with an error for bad input instead.
 *
 * Wire facts (docs/plugins.md §3.2 "Wire facts for decoders"): LogGroup.Logs = field 1,
 * Topic = 3, Source = 4, LogTags = 6 ({Key = 1, Value = 2}); Log.Time = field 1 (varint),
 * Log.Contents = field 2 ({Key = 1, Value = 2}), Log.Time_ns = field 4 (fixed32). Unknown
 * fields are skipped; a repeated scalar keeps the last value.
 */
#ifndef SHIPPER_SDK_H
#define SHIPPER_SDK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formatter.h"

#define SH_SDK_ID "shipper-sdk-c/0.1.0"

/* A UTF-8 string slice, not NUL-terminated, borrowed (from the input or the SDK). */
typedef struct {
  const char *ptr;
  size_t len;
} sh_str;

#define SH_STR(literal) ((sh_str){literal, sizeof(literal) - 1})
sh_str sh_cstr(const char *s);
bool sh_str_eq(sh_str a, sh_str b);

typedef struct {
  sh_str key;
  sh_str value;
} sh_kv;

/* Metadata shared by every log of one call. */
typedef struct {
  const formatter_batch_info_t *batch;
  sh_str topic;
  sh_str source;
  const sh_kv *tags; /* keys without the `__tag__:` prefix, wire order */
  size_t ntags;
} sh_group;

/* One decoded log. */
typedef struct {
  uint32_t time;    /* Log.Time */
  bool has_time_ns; /* Log.Time_ns present */
  uint32_t time_ns;
  const sh_kv *contents; /* wire order; keys may repeat */
  size_t ncontents;
} sh_log;

/* Log.Time + Log.Time_ns (nanos >= 1e9 carry into the seconds). */
shipper_plugin_types_timestamp_t sh_log_timestamp(const sh_log *log);

/* --- the flattened view (what the seed scripts format) ----------------------------- */

typedef enum { SH_FLAT_STR, SH_FLAT_TIME_NS } sh_flat_kind;

/* One entry of the official SDK's flattened dict: the key is `prefix` + `key` (prefix is
 * `__tag__:` for group tags, empty otherwise). */
typedef struct {
  sh_str prefix;
  sh_str key;
  sh_flat_kind kind;
  sh_str value;     /* SH_FLAT_STR */
  uint32_t time_ns; /* SH_FLAT_TIME_NS: `__time_ns_part__`, JSON ["123456789"] */
} sh_flat_entry;

/* The flattened dict of `log` minus `__time__`, in the dict's order: `__topic__`,
 * `__source__`, `__time_ns_part__` (only when non-zero), `__tag__:<k>` per tag, then the
 * contents; a later duplicate overwrites the value and keeps the first position. The array
 * is valid until the next call. */
const sh_flat_entry *sh_flatten(const sh_group *g, const sh_log *log, size_t *count);
/* Whether the entry's key equals `name` (e.g. "__tag__:host"). */
bool sh_flat_key_is(const sh_flat_entry *e, sh_str name);

/* --- growable byte buffer --------------------------------------------------------- */

typedef struct {
  char *ptr;
  size_t len;
  size_t cap;
} sh_buf;

void sh_buf_reserve(sh_buf *b, size_t extra);
void sh_buf_push(sh_buf *b, const char *p, size_t n);
void sh_buf_str(sh_buf *b, sh_str s);
void sh_buf_cstr(sh_buf *b, const char *s);
void sh_buf_char(sh_buf *b, char c);
void sh_buf_printf(sh_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Moves the bytes into a WIT string (the host frees it); the buffer is left empty. */
formatter_string_t sh_buf_take(sh_buf *b);
void sh_buf_free(sh_buf *b);

/* --- JSON -------------------------------------------------------------------------- */

/* `s` as a JSON string with shipper's escaping (docs/rendering.md §2 "Rendering rules"):
 * `"`, `\` and control characters (\n \r \t \b \f, others \u00xx lower case); non-ASCII as
 * is. */
void sh_json_string(sh_buf *out, sh_str s);
/* Same for a key made of two parts (a flat entry's prefix + key). */
void sh_json_string2(sh_buf *out, sh_str a, sh_str b);
/* `s` without surrounding JSON whitespace (space, tab, LF, CR). */
sh_str sh_json_trim(sh_str s);
/* Whether `s` is one strict JSON value (RFC 8259, optional surrounding whitespace): no
 * lone surrogate escapes, at most SH_JSON_MAX_DEPTH levels of nesting. */
#define SH_JSON_MAX_DEPTH 128
bool sh_json_is_strict(sh_str s);
/* `s` trimmed and verbatim when it is strict JSON, else as a JSON string. */
void sh_json_embed(sh_buf *out, sh_str s);
/* `s` as Python's json.dumps writes a str (ensure_ascii: \uXXXX beyond printable ASCII). */
void sh_python_string(sh_buf *out, sh_str s);
void sh_python_string2(sh_buf *out, sh_str a, sh_str b);
/* Appends json.dumps(json.loads(s)) as CPython computes it and returns true, or returns
 * false (leaving `out` as it was) when json.loads(s) would raise. */
bool sh_python_redump(sh_buf *out, sh_str s);

/* --- config -------------------------------------------------------------------------- */

typedef enum {
  SH_JSON_NULL,
  SH_JSON_BOOL,
  SH_JSON_NUMBER,
  SH_JSON_STRING,
  SH_JSON_ARRAY,
  SH_JSON_OBJECT
} sh_json_type;

/* A parsed JSON value of the config. Objects keep every member in order (repeats too). */
typedef struct sh_json {
  sh_json_type type;
  bool boolean;
  sh_str string; /* SH_JSON_STRING: decoded UTF-8; SH_JSON_NUMBER: the number's text */
  struct sh_json *items; /* SH_JSON_ARRAY / SH_JSON_OBJECT (values) */
  sh_str *keys;          /* SH_JSON_OBJECT */
  size_t count;
} sh_json;

/* "a string", "an object"… for messages. */
const char *sh_json_kind(const sh_json *v);

typedef struct sh_config sh_config;

/* The value of `key` (the last one when repeated), NULL when absent or null; marks the key
 * as known. */
const sh_json *sh_config_take(sh_config *cfg, const char *key);
/* A string value: true and *out set, or false with *out = {NULL, 0} when absent; on a wrong
 * type returns false and sets *err (malloc'd message). */
bool sh_config_string(sh_config *cfg, const char *key, sh_str *out, char **err);

/* --- emits and errors ---------------------------------------------------------------- */

typedef struct {
  formatter_emit_t *ptr;
  size_t len;
  size_t cap;
} sh_emits;

/* Appends an emit carrying an HEC event. `body` is moved (left empty); the optional
 * strings (`.ptr == NULL` = none) are copied. `json_body`: hec-body::json, else ::text. */
void sh_emit_hec(sh_emits *out, sh_buf *body, bool json_body,
                 shipper_plugin_types_timestamp_t time, sh_str host, sh_str source,
                 sh_str sourcetype, sh_str index);

typedef struct {
  shipper_plugin_types_error_kind_t kind;
  char *message; /* malloc'd */
} sh_record_error;

void sh_record_error_set(sh_record_error *err, shipper_plugin_types_error_kind_t kind,
                         const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A malloc'd printf. */
char *sh_format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --- what the plugin defines ------------------------------------------------------------ */

extern const char *const PLUGIN_NAME;
extern const char *const PLUGIN_VERSION;
char *plugin_init(sh_config *cfg, void **state);
bool plugin_format(void *state, const sh_group *g, const sh_log *log, sh_emits *out,
                   sh_record_error *err);

#endif
