/*
 * {{name}}: a shipper formatter plugin.
 *
 * Each SLS log becomes one Splunk HEC event: the log's contents as a JSON object, in wire
 * order, with the log's time, the log group's source, and `sourcetype` and `index` from the
 * plugin's config (`[plugin.config]` in shipper's config file; both optional). A log without
 * contents is refused with a record error: shipper writes it to the dead-letter file and ships
 * the rest of its batch.
 *
 * Sample input (samples/input.jsonl, one flattened log per line):
 *
 *   {"__time__": 1700000000, "__time_ns_part__": [123456789], "__source__": "10.0.0.1", "level": "info", "message": "user alice signed in"}
 *
 * with config {"sourcetype": "my:app", "index": "main"} becomes (samples/golden.txt):
 *
 *   {"time":1700000000.123456,"source":"10.0.0.1","sourcetype":"my:app","index":"main","event":{"level":"info","message":"user alice signed in"}}
 *
 * The SDK's API is documented in sdk/shipper_sdk.h.
 */
#include <stdlib.h>

#include "shipper_sdk.h"

const char *const PLUGIN_NAME = "{{name}}";
const char *const PLUGIN_VERSION = "0.1.0";

typedef struct {
  sh_str sourcetype, index; /* .ptr == NULL: unset */
} formatter;

/* Keys not read here are refused after init ("unknown config key ..."), so a typo in
 * [plugin.config] fails at start-up instead of being ignored. */
char *plugin_init(sh_config *cfg, void **state) {
  formatter *p = calloc(1, sizeof *p);
  char *err = NULL;
  sh_config_string(cfg, "sourcetype", &p->sourcetype, &err);
  if (!err) sh_config_string(cfg, "index", &p->index, &err);
  *state = p;
  return err;
}

bool plugin_format(void *state, const sh_group *g, const sh_log *log, sh_emits *out,
                   sh_record_error *err) {
  const formatter *p = state;
  if (log->ncontents == 0) {
    sh_record_error_set(err, SHIPPER_PLUGIN_TYPES_ERROR_KIND_INVALID_INPUT,
                        "the log has no contents");
    return false;
  }
  sh_buf body = {0};
  sh_buf_char(&body, '{');
  for (size_t i = 0; i < log->ncontents; i++) {
    if (i) sh_buf_char(&body, ',');
    sh_json_string(&body, log->contents[i].key);
    sh_buf_char(&body, ':');
    sh_json_string(&body, log->contents[i].value);
  }
  sh_buf_char(&body, '}');
  sh_emit_hec(out, &body, true, sh_log_timestamp(log), (sh_str){0}, g->source, p->sourcetype,
              p->index);
  return true;
}
