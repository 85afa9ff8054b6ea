/*
 * splunk-hec, in C: SLS logs as Splunk HEC events the way Alibaba's seed script sends them,
 * byte for byte the same events as the Rust plugin (plugins/splunk-hec).
 *
 * Sample input (flattened, one log):
 *
 *   {"__time__": 1700000000, "__time_ns_part__": [123456789],
 *    "__topic__": "actiontrail_audit_event", "__source__": "actiontrail",
 *    "__tag__:__receive_time__": "1700000005",
 *    "event": "{\"eventName\": \"ConsoleSignin\"}", "event_name": "ConsoleSignin"}
 *
 * with config {"sourcetype": "aliyun:actiontrail", "index": "cloud"} becomes:
 *
 *   {"time":1700000000.123456,"sourcetype":"aliyun:actiontrail","index":"cloud","event":{"__topic__":"actiontrail_audit_event","__source__":"actiontrail","__time_ns_part__":["123456789"],"__tag__:__receive_time__":"1700000005","event":{"eventName": "ConsoleSignin"},"event_name":"ConsoleSignin"}}
 *
 * The event is the official SDK's flattened dict minus `__time__` (sh_flatten), in that
 * order; `time` is `__time__` plus the nanosecond part. Config (every key optional):
 * - json_fields: topic -> field names whose value is JSON text to embed as JSON (default
 *   {"actiontrail_audit_event": ["event"]}; {} turns it off). Strict JSON is embedded
 *   verbatim (surrounding whitespace trimmed); anything else stays a string.
 * - sourcetype, source, index, host: HEC metadata; unset or "" leaves the key out.
 * - event_format: "object" (default; the event is a JSON object) or "seed-string" (the
 *   event is a string holding Python json.dumps text, exactly what the seed sends).
 */
#include <stdlib.h>
#include <string.h>

#include "shipper_sdk.h"

const char *const PLUGIN_NAME = "splunk-hec";
const char *const PLUGIN_VERSION = "0.1.0";

typedef struct {
  sh_str topic;
  const sh_str *fields;
  size_t nfields;
} json_fields_entry;

typedef struct {
  json_fields_entry *json_fields;
  size_t njson_fields;
  bool seed_string;
  sh_str sourcetype, source, index, host; /* .ptr == NULL: unset */
} splunk_hec;

static const sh_str DEFAULT_FIELDS[] = {{"event", 5}};
static json_fields_entry DEFAULT_JSON_FIELDS[] = {
    {{"actiontrail_audit_event", 23}, DEFAULT_FIELDS, 1}};

static char *read_json_fields(sh_config *cfg, splunk_hec *p) {
  const sh_json *v = sh_config_take(cfg, "json_fields");
  if (!v) {
    p->json_fields = DEFAULT_JSON_FIELDS;
    p->njson_fields = 1;
    return NULL;
  }
  if (v->type != SH_JSON_OBJECT) {
    return sh_format(
        "config key `json_fields`: expected an object of topic → list of field names, got %s",
        sh_json_kind(v));
  }
  p->json_fields = calloc(v->count ? v->count : 1, sizeof(json_fields_entry));
  p->njson_fields = v->count;
  for (size_t i = 0; i < v->count; i++) {
    const sh_json *f = &v->items[i];
    json_fields_entry *e = &p->json_fields[i];
    e->topic = v->keys[i];
    if (f->type == SH_JSON_STRING) {
      e->fields = &f->string;
      e->nfields = 1;
      continue;
    }
    bool ok = f->type == SH_JSON_ARRAY;
    for (size_t k = 0; ok && k < f->count; k++) ok = f->items[k].type == SH_JSON_STRING;
    if (!ok) {
      return sh_format(
          "config key `json_fields`: topic `%.*s` must map to a list of field names (strings), "
          "got %s",
          (int)e->topic.len, e->topic.ptr, sh_json_kind(f));
    }
    sh_str *names = calloc(f->count ? f->count : 1, sizeof(sh_str));
    for (size_t k = 0; k < f->count; k++) names[k] = f->items[k].string;
    e->fields = names;
    e->nfields = f->count;
  }
  return NULL;
}

/* An optional string where "" means unset (the seed's `if self.option.get(...)`). */
static char *non_empty(sh_config *cfg, const char *key, sh_str *out) {
  char *err = NULL;
  if (!sh_config_string(cfg, key, out, &err) || out->len == 0) *out = (sh_str){NULL, 0};
  return err;
}

char *plugin_init(sh_config *cfg, void **state) {
  splunk_hec *p = calloc(1, sizeof *p);
  char *err = read_json_fields(cfg, p);
  if (err) return err;
  sh_str format;
  if (sh_config_string(cfg, "event_format", &format, &err)) {
    if (sh_str_eq(format, SH_STR("seed-string"))) p->seed_string = true;
    else if (!sh_str_eq(format, SH_STR("object"))) {
      return sh_format("config key `event_format`: `%.*s` is not one of: object, seed-string",
                       (int)format.len, format.ptr);
    }
  }
  if (err) return err;
  if ((err = non_empty(cfg, "sourcetype", &p->sourcetype))) return err;
  if ((err = non_empty(cfg, "source", &p->source))) return err;
  if ((err = non_empty(cfg, "index", &p->index))) return err;
  if ((err = non_empty(cfg, "host", &p->host))) return err;
  *state = p;
  return NULL;
}

/* The fields for this log's topic: the first table entry for it wins. */
static const json_fields_entry *fields_for(const splunk_hec *p, sh_str topic) {
  for (size_t i = 0; i < p->njson_fields; i++) {
    if (sh_str_eq(p->json_fields[i].topic, topic)) return &p->json_fields[i];
  }
  return NULL;
}

static bool is_json_field(const json_fields_entry *f, const sh_flat_entry *e) {
  if (!f || e->kind != SH_FLAT_STR) return false;
  for (size_t i = 0; i < f->nfields; i++) {
    if (sh_flat_key_is(e, f->fields[i])) return true;
  }
  return false;
}

/* `__time_ns_part__` as JSON: `["123456789"]` (the SDK's 1-tuple of a string). */
static void push_ns(sh_buf *b, uint32_t ns) {
  char digits[10];
  int n = 0;
  do digits[n++] = (char)('0' + ns % 10); while (ns /= 10);
  sh_buf_push(b, "[\"", 2);
  while (n) sh_buf_char(b, digits[--n]);
  sh_buf_push(b, "\"]", 2);
}

bool plugin_format(void *state, const sh_group *g, const sh_log *log, sh_emits *out,
                   sh_record_error *err) {
  (void)err;
  const splunk_hec *p = state;
  size_t n;
  const sh_flat_entry *flat = sh_flatten(g, log, &n);
  /* `__topic__` is always the first entry (a content of that name overwrites it there). */
  const json_fields_entry *fields = fields_for(p, flat[0].value);

  size_t estimate = 64;
  for (size_t i = 0; i < n; i++) estimate += flat[i].prefix.len + flat[i].key.len + flat[i].value.len + 8;
  sh_buf body = {0};
  sh_buf_reserve(&body, estimate);
  sh_buf_char(&body, '{');
  for (size_t i = 0; i < n; i++) {
    const sh_flat_entry *e = &flat[i];
    if (p->seed_string) {
      if (i) sh_buf_push(&body, ", ", 2);
      sh_python_string2(&body, e->prefix, e->key);
      sh_buf_push(&body, ": ", 2);
      if (e->kind == SH_FLAT_TIME_NS) push_ns(&body, e->time_ns);
      else if (!(is_json_field(fields, e) && sh_python_redump(&body, e->value)))
        sh_python_string(&body, e->value);
    } else {
      if (i) sh_buf_char(&body, ',');
      sh_json_string2(&body, e->prefix, e->key);
      sh_buf_char(&body, ':');
      if (e->kind == SH_FLAT_TIME_NS) push_ns(&body, e->time_ns);
      else if (is_json_field(fields, e)) sh_json_embed(&body, e->value);
      else sh_json_string(&body, e->value);
    }
  }
  sh_buf_char(&body, '}');
  sh_emit_hec(out, &body, !p->seed_string, sh_log_timestamp(log), p->host, p->source,
              p->sourcetype, p->index);
  return true;
}
