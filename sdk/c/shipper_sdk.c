/*
 * shipper mini-SDK for C: protobuf decoding of the LogGroup, the flattened view, JSON
 * helpers, the config reader and the export glue. See shipper_sdk.h for the contract.
 *
 * Memory: every string in what `process` returns is malloc'd, because the generated
 * cabi_post_process frees each one after the host has copied the result; everything else
 * the SDK allocates during a call is freed when the call ends.
 */
#include "shipper_sdk.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- small helpers -------------------------------------------------------------------- */

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) abort(); /* out of memory: trap, the host reports the memory limit */
  return p;
}

static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) abort();
  return p;
}

sh_str sh_cstr(const char *s) { return (sh_str){s, strlen(s)}; }

bool sh_str_eq(sh_str a, sh_str b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static char *vformat(const char *fmt, va_list ap) {
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  char *s = xmalloc((size_t)(n < 0 ? 0 : n) + 1);
  vsnprintf(s, (size_t)(n < 0 ? 0 : n) + 1, fmt, ap);
  return s;
}

char *sh_format(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = vformat(fmt, ap);
  va_end(ap);
  return s;
}

/* The generated cabi_post_* free a string or list only when it is non-empty, so empty ones
 * carry no allocation. */
static formatter_string_t wit_dup(sh_str s) {
  formatter_string_t out = {NULL, s.len};
  if (s.len) {
    out.ptr = xmalloc(s.len);
    memcpy(out.ptr, s.ptr, s.len);
  }
  return out;
}

static formatter_string_t wit_take_cstr(char *s) {
  return (formatter_string_t){(uint8_t *)s, strlen(s)};
}

/* Allocations that live until the end of the current `process` call. */
static void **call_allocs;
static size_t call_nallocs, call_cap_allocs;

static void *call_alloc(size_t n) {
  if (call_nallocs == call_cap_allocs) {
    call_cap_allocs = call_cap_allocs ? call_cap_allocs * 2 : 16;
    call_allocs = xrealloc(call_allocs, call_cap_allocs * sizeof(void *));
  }
  return call_allocs[call_nallocs++] = xmalloc(n);
}

static void call_free_all(void) {
  for (size_t i = 0; i < call_nallocs; i++) free(call_allocs[i]);
  call_nallocs = 0;
}

/* --- buffers ------------------------------------------------------------------------------ */

void sh_buf_reserve(sh_buf *b, size_t extra) {
  if (b->len + extra <= b->cap) return;
  size_t cap = b->cap ? b->cap * 2 : 64;
  while (cap < b->len + extra) cap *= 2;
  b->ptr = xrealloc(b->ptr, cap);
  b->cap = cap;
}

void sh_buf_push(sh_buf *b, const char *p, size_t n) {
  if (!n) return;
  sh_buf_reserve(b, n);
  memcpy(b->ptr + b->len, p, n);
  b->len += n;
}

void sh_buf_str(sh_buf *b, sh_str s) { sh_buf_push(b, s.ptr, s.len); }
void sh_buf_cstr(sh_buf *b, const char *s) { sh_buf_push(b, s, strlen(s)); }

void sh_buf_char(sh_buf *b, char c) {
  sh_buf_reserve(b, 1);
  b->ptr[b->len++] = c;
}

void sh_buf_printf(sh_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = vformat(fmt, ap);
  va_end(ap);
  sh_buf_cstr(b, s);
  free(s);
}

formatter_string_t sh_buf_take(sh_buf *b) {
  formatter_string_t s = {(uint8_t *)b->ptr, b->len};
  if (!b->len) {
    free(b->ptr);
    s.ptr = NULL;
  }
  b->ptr = NULL;
  b->len = b->cap = 0;
  return s;
}

void sh_buf_free(sh_buf *b) {
  free(b->ptr);
  b->ptr = NULL;
  b->len = b->cap = 0;
}

/* --- UTF-8 ---------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s[i..n), or 0 when invalid; on 0, *bad is the
 * length of the maximal invalid subpart (what one U+FFFD replaces, as Rust's
 * from_utf8_lossy and the Unicode recommendation do). */
static size_t utf8_seq(const uint8_t *s, size_t i, size_t n, size_t *bad) {
  uint8_t b = s[i];
  if (b < 0x80) return 1;
  size_t need;
  uint8_t lo = 0x80, hi = 0xbf;
  if (b >= 0xc2 && b <= 0xdf) need = 1;
  else if (b == 0xe0) need = 2, lo = 0xa0;
  else if ((b >= 0xe1 && b <= 0xec) || b == 0xee || b == 0xef) need = 2;
  else if (b == 0xed) need = 2, hi = 0x9f;
  else if (b == 0xf0) need = 3, lo = 0x90;
  else if (b >= 0xf1 && b <= 0xf3) need = 3;
  else if (b == 0xf4) need = 3, hi = 0x8f;
  else {
    *bad = 1;
    return 0;
  }
  for (size_t k = 1; k <= need; k++) {
    if (i + k >= n) {
      *bad = k;
      return 0;
    }
    uint8_t c = s[i + k];
    uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xbf;
    if (c < l || c > h) {
      *bad = k;
      return 0;
    }
  }
  return need + 1;
}

/* The bytes as a string: borrowed when valid UTF-8, else a repaired copy (U+FFFD per
 * maximal invalid subpart) that lives until the end of the call. */
static sh_str lossy(const uint8_t *p, size_t n) {
  size_t i = 0, bad;
  while (i < n) {
    /* ASCII eight bytes at a time (most log text). */
    if (i + 8 <= n) {
      uint64_t w;
      memcpy(&w, p + i, 8);
      if (!(w & 0x8080808080808080ull)) {
        i += 8;
        continue;
      }
    }
    if (p[i] < 0x80) {
      i++;
      continue;
    }
    size_t k = utf8_seq(p, i, n, &bad);
    if (!k) break;
    i += k;
  }
  if (i == n) return (sh_str){(const char *)p, n};
  /* Worst case: every byte becomes a 3-byte U+FFFD. */
  char *out = call_alloc(n * 3);
  size_t o = 0;
  memcpy(out, p, i);
  o = i;
  while (i < n) {
    size_t k = utf8_seq(p, i, n, &bad);
    if (k) {
      memcpy(out + o, p + i, k);
      o += k;
      i += k;
    } else {
      memcpy(out + o, "\xef\xbf\xbd", 3);
      o += 3;
      i += bad;
    }
  }
  return (sh_str){out, o};
}

/* Next code point of valid UTF-8 at s[*i]. */
static uint32_t utf8_next(const uint8_t *s, size_t *i) {
  uint8_t b = s[*i];
  if (b < 0x80) return s[(*i)++];
  if (b < 0xe0) {
    uint32_t c = ((uint32_t)(b & 0x1f) << 6) | (s[*i + 1] & 0x3f);
    *i += 2;
    return c;
  }
  if (b < 0xf0) {
    uint32_t c = ((uint32_t)(b & 0x0f) << 12) | ((uint32_t)(s[*i + 1] & 0x3f) << 6) |
                 (s[*i + 2] & 0x3f);
    *i += 3;
    return c;
  }
  uint32_t c = ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(s[*i + 1] & 0x3f) << 12) |
               ((uint32_t)(s[*i + 2] & 0x3f) << 6) | (s[*i + 3] & 0x3f);
  *i += 4;
  return c;
}

static void utf8_push(sh_buf *b, uint32_t c) {
  char t[4];
  size_t n;
  if (c < 0x80) t[0] = (char)c, n = 1;
  else if (c < 0x800) t[0] = (char)(0xc0 | (c >> 6)), t[1] = (char)(0x80 | (c & 0x3f)), n = 2;
  else if (c < 0x10000)
    t[0] = (char)(0xe0 | (c >> 12)), t[1] = (char)(0x80 | ((c >> 6) & 0x3f)),
    t[2] = (char)(0x80 | (c & 0x3f)), n = 3;
  else
    t[0] = (char)(0xf0 | (c >> 18)), t[1] = (char)(0x80 | ((c >> 12) & 0x3f)),
    t[2] = (char)(0x80 | ((c >> 6) & 0x3f)), t[3] = (char)(0x80 | (c & 0x3f)), n = 4;
  sh_buf_push(b, t, n);
}

/* --- protobuf walking ----------------------------------------------------------------- */

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

typedef struct {
  size_t offset; /* within the message */
  const char *what;
} wire_error;

typedef struct {
  const uint8_t *buf;
  size_t start, pos, end;
} pb_reader;

typedef struct {
  uint32_t number;
  uint8_t wire;
  size_t tag_at; /* relative to the message start */
  uint64_t scalar;
  size_t p_start, p_end; /* absolute */
} pb_field;

static bool pb_varint(pb_reader *r, uint64_t *out, wire_error *err) {
  size_t start = r->pos;
  uint64_t value = 0;
  for (unsigned shift = 0; shift < 70; shift += 7) {
    if (r->pos >= r->end) {
      *err = (wire_error){start - r->start, "truncated varint"};
      return false;
    }
    uint8_t b = r->buf[r->pos++];
    if (shift == 63 && b > 1) break;
    value |= (uint64_t)(b & 0x7f) << shift;
    if (b < 0x80) {
      *out = value;
      return true;
    }
  }
  *err = (wire_error){start - r->start, "varint longer than 64 bits"};
  return false;
}

/* 1: a field; 0: end of message; -1: error. */
static int pb_next(pb_reader *r, pb_field *f, wire_error *err) {
  if (r->pos >= r->end) return 0;
  size_t tag_at = r->pos - r->start;
  uint64_t tag;
  if (!pb_varint(r, &tag, err)) return -1;
  uint64_t number = tag >> 3;
  if (number == 0 || number > 0xffffffffu) {
    *err = (wire_error){tag_at, "invalid field number 0"};
    return -1;
  }
  f->number = (uint32_t)number;
  f->wire = (uint8_t)(tag & 7);
  f->tag_at = tag_at;
  f->scalar = 0;
  switch (f->wire) {
    case WIRE_VARINT:
      if (!pb_varint(r, &f->scalar, err)) return -1;
      break;
    case WIRE_FIXED64:
      if (r->end - r->pos < 8) goto past_end;
      r->pos += 8;
      break;
    case WIRE_LEN: {
      uint64_t len;
      if (!pb_varint(r, &len, err)) return -1;
      /* The Rust SDK runs on wasm32 (32-bit lengths): keep its message. */
      if (len > 0xffffffffu) {
        *err = (wire_error){tag_at, "length does not fit in memory"};
        return -1;
      }
      if (len > r->end - r->pos) goto past_end;
      f->p_start = r->pos;
      f->p_end = r->pos + (size_t)len;
      r->pos = f->p_end;
      return 1;
    }
    case WIRE_FIXED32: {
      if (r->end - r->pos < 4) goto past_end;
      const uint8_t *p = r->buf + r->pos;
      f->scalar = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
                  ((uint32_t)p[3] << 24);
      r->pos += 4;
      break;
    }
    default:
      *err = (wire_error){tag_at, "unsupported wire type (groups are not used by SLS)"};
      return -1;
  }
  f->p_start = f->p_end = r->pos;
  return 1;
past_end:
  *err = (wire_error){tag_at, "field runs past the end of the message"};
  return -1;
}

/* {Key = 1, Value = 2}; a missing one reads as "". Offsets relative to the message. */
static bool key_value(const uint8_t *buf, size_t start, size_t end, sh_kv *out,
                      wire_error *err) {
  pb_reader r = {buf, start, start, end};
  pb_field f;
  int got;
  out->key = out->value = (sh_str){"", 0};
  while ((got = pb_next(&r, &f, err)) == 1) {
    if (f.number == 1 || f.number == 2) {
      if (f.wire != WIRE_LEN) {
        *err = (wire_error){f.tag_at, "key/value is not length-delimited"};
        return false;
      }
      sh_str s = lossy(buf + f.p_start, f.p_end - f.p_start);
      if (f.number == 1) out->key = s;
      else out->value = s;
    }
  }
  return got == 0;
}

/* Growable arrays reused across calls. */
static sh_kv *tags_buf;
static size_t tags_cap;
static sh_kv *contents_buf;
static size_t contents_cap;
static size_t *logs_buf; /* pairs: start, end */
static size_t logs_cap;

static void grow(void **p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) return;
  size_t cap2 = *cap ? *cap * 2 : 16;
  while (cap2 < need) cap2 *= 2;
  *p = xrealloc(*p, cap2 * size);
  *cap = cap2;
}

static bool scan_group(const uint8_t *buf, size_t len, sh_group *g, size_t *nlogs,
                       wire_error *err) {
  pb_reader r = {buf, 0, 0, len};
  pb_field f;
  int got;
  *nlogs = 0;
  g->topic = g->source = (sh_str){"", 0};
  g->ntags = 0;
  while ((got = pb_next(&r, &f, err)) == 1) {
    bool is_meta = f.number == 1 || f.number == 3 || f.number == 4 || f.number == 6;
    if (is_meta && f.wire != WIRE_LEN) {
      *err = (wire_error){f.tag_at, "LogGroup field is not length-delimited"};
      return false;
    }
    if (f.number == 1) {
      grow((void **)&logs_buf, &logs_cap, 2 * (*nlogs + 1), sizeof(size_t));
      logs_buf[2 * *nlogs] = f.p_start;
      logs_buf[2 * *nlogs + 1] = f.p_end;
      (*nlogs)++;
    } else if (f.number == 3) {
      g->topic = lossy(buf + f.p_start, f.p_end - f.p_start);
    } else if (f.number == 4) {
      g->source = lossy(buf + f.p_start, f.p_end - f.p_start);
    } else if (f.number == 6) {
      grow((void **)&tags_buf, &tags_cap, g->ntags + 1, sizeof(sh_kv));
      if (!key_value(buf, f.p_start, f.p_end, &tags_buf[g->ntags], err)) {
        /* The Rust SDK reports these against the tag field's start. */
        err->offset += f.tag_at;
        return false;
      }
      g->ntags++;
    }
  }
  g->tags = tags_buf;
  return got == 0;
}

static bool decode_log(const uint8_t *buf, size_t start, size_t end, sh_log *log,
                       wire_error *err) {
  pb_reader r = {buf, start, start, end};
  pb_field f;
  int got;
  bool has_time = false;
  log->has_time_ns = false;
  log->time_ns = 0;
  log->ncontents = 0;
  while ((got = pb_next(&r, &f, err)) == 1) {
    if (f.number == 1) {
      if (f.wire != WIRE_VARINT) {
        *err = (wire_error){f.tag_at, "Log.Time is not a varint"};
        return false;
      }
      /* uint32 in the schema: parsers keep the low 32 bits of a wider varint. */
      log->time = (uint32_t)f.scalar;
      has_time = true;
    } else if (f.number == 2) {
      if (f.wire != WIRE_LEN) {
        *err = (wire_error){f.tag_at, "Log.Contents is not length-delimited"};
        return false;
      }
      grow((void **)&contents_buf, &contents_cap, log->ncontents + 1, sizeof(sh_kv));
      if (!key_value(buf, f.p_start, f.p_end, &contents_buf[log->ncontents], err)) {
        err->offset += f.p_start - start;
        return false;
      }
      log->ncontents++;
    } else if (f.number == 4) {
      if (f.wire != WIRE_FIXED32) {
        *err = (wire_error){f.tag_at, "Log.Time_ns is not fixed32"};
        return false;
      }
      log->has_time_ns = true;
      log->time_ns = (uint32_t)f.scalar;
    }
  }
  if (got < 0) return false;
  if (!has_time) {
    *err = (wire_error){0, "Log.Time (field 1, required) is missing"};
    return false;
  }
  log->contents = contents_buf;
  return true;
}

shipper_plugin_types_timestamp_t sh_log_timestamp(const sh_log *log) {
  uint32_t ns = log->has_time_ns ? log->time_ns : 0;
  return (shipper_plugin_types_timestamp_t){
      (int64_t)log->time + ns / 1000000000u, ns % 1000000000u};
}

/* --- the flattened view --------------------------------------------------------------- */

static sh_flat_entry *flat_buf;
static size_t flat_cap;

static bool flat_key_eq(const sh_flat_entry *e, sh_str prefix, sh_str key) {
  if (e->prefix.len + e->key.len != prefix.len + key.len) return false;
  /* Compare the concatenations byte by byte (prefixes are "" or "__tag__:"). */
  size_t n = prefix.len + key.len;
  for (size_t i = 0; i < n; i++) {
    char a = i < e->prefix.len ? e->prefix.ptr[i] : e->key.ptr[i - e->prefix.len];
    char b = i < prefix.len ? prefix.ptr[i] : key.ptr[i - prefix.len];
    if (a != b) return false;
  }
  return true;
}

bool sh_flat_key_is(const sh_flat_entry *e, sh_str name) {
  return flat_key_eq(e, (sh_str){"", 0}, name);
}

static void flat_set(size_t *n, sh_str prefix, sh_str key, sh_flat_kind kind, sh_str value,
                     uint32_t ns) {
  for (size_t i = 0; i < *n; i++) {
    if (flat_key_eq(&flat_buf[i], prefix, key)) {
      flat_buf[i].kind = kind;
      flat_buf[i].value = value;
      flat_buf[i].time_ns = ns;
      return;
    }
  }
  grow((void **)&flat_buf, &flat_cap, *n + 1, sizeof(sh_flat_entry));
  flat_buf[(*n)++] = (sh_flat_entry){prefix, key, kind, value, ns};
}

const sh_flat_entry *sh_flatten(const sh_group *g, const sh_log *log, size_t *count) {
  static const sh_str none = {"", 0};
  static const sh_str tag_prefix = {"__tag__:", 8};
  size_t n = 0;
  flat_set(&n, none, SH_STR("__topic__"), SH_FLAT_STR, g->topic, 0);
  flat_set(&n, none, SH_STR("__source__"), SH_FLAT_STR, g->source, 0);
  /* `if log.Time_ns:` in the SDK: absent and zero are both left out. */
  if (log->has_time_ns && log->time_ns != 0) {
    flat_set(&n, none, SH_STR("__time_ns_part__"), SH_FLAT_TIME_NS, none, log->time_ns);
  }
  for (size_t i = 0; i < g->ntags; i++) {
    flat_set(&n, tag_prefix, g->tags[i].key, SH_FLAT_STR, g->tags[i].value, 0);
  }
  for (size_t i = 0; i < log->ncontents; i++) {
    /* The seed deletes `__time__`, which a content of that name overwrote. */
    if (sh_str_eq(log->contents[i].key, SH_STR("__time__"))) continue;
    flat_set(&n, none, log->contents[i].key, SH_FLAT_STR, log->contents[i].value, 0);
  }
  *count = n;
  return flat_buf;
}

/* --- JSON writing ------------------------------------------------------------------------ */

static const char HEX[] = "0123456789abcdef";

/* 1 for the bytes a compact JSON string must escape: control characters, `"` and `\`. */
static const uint8_t NEEDS_ESCAPE[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 0, 0, 1, ['\\'] = 1};

static void json_escape(sh_buf *out, sh_str s) {
  const unsigned char *p = (const unsigned char *)s.ptr;
  size_t run = 0;
  sh_buf_reserve(out, s.len + 2);
  for (size_t i = 0; i < s.len; i++) {
    unsigned char c = p[i];
    if (!NEEDS_ESCAPE[c]) continue;
    sh_buf_push(out, s.ptr + run, i - run);
    run = i + 1;
    char esc[6] = {'\\', 0, 0, 0, 0, 0};
    size_t n = 2;
    switch (c) {
      case '"': esc[1] = '"'; break;
      case '\\': esc[1] = '\\'; break;
      case '\n': esc[1] = 'n'; break;
      case '\r': esc[1] = 'r'; break;
      case '\t': esc[1] = 't'; break;
      case '\b': esc[1] = 'b'; break;
      case '\f': esc[1] = 'f'; break;
      default:
        esc[1] = 'u', esc[2] = '0', esc[3] = '0', esc[4] = HEX[c >> 4], esc[5] = HEX[c & 15];
        n = 6;
    }
    sh_buf_push(out, esc, n);
  }
  sh_buf_push(out, s.ptr + run, s.len - run);
}

void sh_json_string(sh_buf *out, sh_str s) {
  sh_buf_char(out, '"');
  json_escape(out, s);
  sh_buf_char(out, '"');
}

void sh_json_string2(sh_buf *out, sh_str a, sh_str b) {
  sh_buf_char(out, '"');
  json_escape(out, a);
  json_escape(out, b);
  sh_buf_char(out, '"');
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

sh_str sh_json_trim(sh_str s) {
  while (s.len && is_ws(s.ptr[0])) s.ptr++, s.len--;
  while (s.len && is_ws(s.ptr[s.len - 1])) s.len--;
  return s;
}

/* --- strict JSON validation (the Rust SDK's json::is_valid) ------------------------------ */

typedef struct {
  const unsigned char *b;
  size_t pos, len;
} scan;

static int peek(const scan *s) { return s->pos < s->len ? s->b[s->pos] : -1; }

static void skip_ws(scan *s) {
  while (s->pos < s->len && is_ws((char)s->b[s->pos])) s->pos++;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool hex4(scan *s, uint32_t *out) {
  if (s->len - s->pos < 4) return false;
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(s->b[s->pos + i]);
    if (h < 0) return false;
    v = v << 4 | (uint32_t)h;
  }
  s->pos += 4;
  *out = v;
  return true;
}

static bool v_string(scan *s) {
  s->pos++;
  for (;;) {
    int c = peek(s);
    if (c < 0) return false;
    if (c == '"') {
      s->pos++;
      return true;
    }
    if (c < 0x20) return false;
    if (c != '\\') {
      s->pos++;
      continue;
    }
    s->pos++;
    c = peek(s);
    s->pos++;
    switch (c) {
      case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        break;
      case 'u': {
        uint32_t u, lo;
        if (!hex4(s, &u)) return false;
        if (u >= 0xd800 && u <= 0xdbff) {
          if (peek(s) != '\\') return false;
          s->pos++;
          if (peek(s) != 'u') return false;
          s->pos++;
          if (!hex4(s, &lo) || lo < 0xdc00 || lo > 0xdfff) return false;
        } else if (u >= 0xdc00 && u <= 0xdfff) {
          return false;
        }
        break;
      }
      default:
        return false;
    }
  }
}

static size_t digits(scan *s) {
  size_t start = s->pos;
  while (peek(s) >= '0' && peek(s) <= '9') s->pos++;
  return s->pos - start;
}

static bool v_number(scan *s) {
  if (peek(s) == '-') s->pos++;
  int c = peek(s);
  if (c == '0') s->pos++;
  else if (c >= '1' && c <= '9') digits(s);
  else return false;
  if (peek(s) == '.') {
    s->pos++;
    if (!digits(s)) return false;
  }
  if (peek(s) == 'e' || peek(s) == 'E') {
    s->pos++;
    if (peek(s) == '+' || peek(s) == '-') s->pos++;
    if (!digits(s)) return false;
  }
  return true;
}

static bool v_literal(scan *s, const char *word) {
  size_t n = strlen(word);
  if (s->len - s->pos < n || memcmp(s->b + s->pos, word, n) != 0) return false;
  s->pos += n;
  return true;
}

static bool v_value(scan *s, int depth) {
  int c = peek(s);
  switch (c) {
    case '{':
    case '[': {
      if (depth == SH_JSON_MAX_DEPTH) return false;
      bool object = c == '{';
      s->pos++;
      skip_ws(s);
      if (peek(s) == (object ? '}' : ']')) {
        s->pos++;
        return true;
      }
      for (;;) {
        if (object) {
          if (peek(s) != '"' || !v_string(s)) return false;
          skip_ws(s);
          if (peek(s) != ':') return false;
          s->pos++;
          skip_ws(s);
        }
        if (!v_value(s, depth + 1)) return false;
        skip_ws(s);
        c = peek(s);
        if (c == ',') {
          s->pos++;
          skip_ws(s);
        } else if (c == (object ? '}' : ']')) {
          s->pos++;
          return true;
        } else {
          return false;
        }
      }
    }
    case '"': return v_string(s);
    case 't': return v_literal(s, "true");
    case 'f': return v_literal(s, "false");
    case 'n': return v_literal(s, "null");
    default:
      return (c == '-' || (c >= '0' && c <= '9')) && v_number(s);
  }
}

bool sh_json_is_strict(sh_str text) {
  scan s = {(const unsigned char *)text.ptr, 0, text.len};
  skip_ws(&s);
  if (!v_value(&s, 0)) return false;
  skip_ws(&s);
  return s.pos == s.len;
}

void sh_json_embed(sh_buf *out, sh_str s) {
  sh_str trimmed = sh_json_trim(s);
  if (trimmed.len && sh_json_is_strict(trimmed)) sh_buf_str(out, trimmed);
  else sh_json_string(out, s);
}

/* --- Python json.dumps style (ensure_ascii) ------------------------------------------------ */

static void py_unit(sh_buf *out, uint32_t u) {
  switch (u) {
    case '"': sh_buf_push(out, "\\\"", 2); return;
    case '\\': sh_buf_push(out, "\\\\", 2); return;
    case '\n': sh_buf_push(out, "\\n", 2); return;
    case '\r': sh_buf_push(out, "\\r", 2); return;
    case '\t': sh_buf_push(out, "\\t", 2); return;
    case '\b': sh_buf_push(out, "\\b", 2); return;
    case '\f': sh_buf_push(out, "\\f", 2); return;
    default:
      if (u >= 0x20 && u <= 0x7e) {
        sh_buf_char(out, (char)u);
      } else {
        char e[6] = {'\\', 'u', HEX[(u >> 12) & 15], HEX[(u >> 8) & 15], HEX[(u >> 4) & 15],
                     HEX[u & 15]};
        sh_buf_push(out, e, 6);
      }
  }
}

static void py_codepoint(sh_buf *out, uint32_t c) {
  if (c >= 0x10000) {
    c -= 0x10000;
    py_unit(out, 0xd800 + (c >> 10));
    py_unit(out, 0xdc00 + (c & 0x3ff));
  } else {
    py_unit(out, c);
  }
}

static void py_escape(sh_buf *out, sh_str s) {
  const uint8_t *p = (const uint8_t *)s.ptr;
  size_t i = 0;
  while (i < s.len) {
    if (p[i] >= 0x20 && p[i] <= 0x7e && p[i] != '"' && p[i] != '\\') {
      size_t j = i;
      while (j < s.len && p[j] >= 0x20 && p[j] <= 0x7e && p[j] != '"' && p[j] != '\\') j++;
      sh_buf_push(out, s.ptr + i, j - i);
      i = j;
    } else {
      py_codepoint(out, utf8_next(p, &i));
    }
  }
}

void sh_python_string(sh_buf *out, sh_str s) {
  sh_buf_char(out, '"');
  py_escape(out, s);
  sh_buf_char(out, '"');
}

void sh_python_string2(sh_buf *out, sh_str a, sh_str b) {
  sh_buf_char(out, '"');
  py_escape(out, a);
  py_escape(out, b);
  sh_buf_char(out, '"');
}

/* repr(float) as CPython writes it ('short' style), with json.dumps's NaN/Infinity. */
static void py_float_repr(sh_buf *out, double v) {
  if (isnan(v)) {
    sh_buf_cstr(out, "NaN");
    return;
  }
  if (isinf(v)) {
    sh_buf_cstr(out, v > 0 ? "Infinity" : "-Infinity");
    return;
  }
  /* Shortest digits that round-trip: the first precision whose correctly rounded %e
   * text parses back to the same double (closest among the shortest, as repr picks). */
  char sci[40];
  double a = fabs(v);
  for (int prec = 0; prec <= 17; prec++) {
    snprintf(sci, sizeof sci, "%.*e", prec, a);
    if (strtod(sci, NULL) == a) break;
  }
  char digits[24];
  size_t nd = 0;
  char *e = strchr(sci, 'e');
  for (char *p = sci; p < e; p++) {
    if (*p != '.') digits[nd++] = *p;
  }
  int exp = atoi(e + 1);
  if (signbit(v)) sh_buf_char(out, '-');
  int decpt = exp + 1;
  if (decpt <= -4 || decpt > 16) {
    sh_buf_char(out, digits[0]);
    if (nd > 1) {
      sh_buf_char(out, '.');
      sh_buf_push(out, digits + 1, nd - 1);
    }
    sh_buf_printf(out, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  } else if (decpt <= 0) {
    sh_buf_push(out, "0.", 2);
    for (int i = 0; i < -decpt; i++) sh_buf_char(out, '0');
    sh_buf_push(out, digits, nd);
  } else if ((size_t)decpt >= nd) {
    sh_buf_push(out, digits, nd);
    for (size_t i = nd; i < (size_t)decpt; i++) sh_buf_char(out, '0');
    sh_buf_push(out, ".0", 2);
  } else {
    sh_buf_push(out, digits, (size_t)decpt);
    sh_buf_char(out, '.');
    sh_buf_push(out, digits + decpt, nd - (size_t)decpt);
  }
}

#define PY_INT_MAX_DIGITS 4300

static bool py_value(scan *s, sh_buf *out, int depth);

/* A string at its opening quote, written as json.dumps writes the str json.loads makes
 * (UTF-16 units one by one: lone surrogates kept, pairs re-encode to the same units). */
static bool py_str(scan *s, sh_buf *out) {
  s->pos++;
  sh_buf_char(out, '"');
  for (;;) {
    size_t start = s->pos;
    while (s->pos < s->len && s->b[s->pos] != '"' && s->b[s->pos] != '\\' &&
           s->b[s->pos] >= 0x20)
      s->pos++;
    py_escape(out, (sh_str){(const char *)s->b + start, s->pos - start});
    int c = peek(s);
    if (c == '"') {
      s->pos++;
      sh_buf_char(out, '"');
      return true;
    }
    if (c != '\\') return false; /* end of text or a raw control character */
    s->pos++;
    c = peek(s);
    s->pos++;
    uint32_t u;
    switch (c) {
      case '"': u = '"'; break;
      case '\\': u = '\\'; break;
      case '/': u = '/'; break;
      case 'b': u = '\b'; break;
      case 'f': u = '\f'; break;
      case 'n': u = '\n'; break;
      case 'r': u = '\r'; break;
      case 't': u = '\t'; break;
      case 'u':
        if (!hex4(s, &u)) return false;
        break;
      default:
        return false;
    }
    py_unit(out, u);
  }
}

static bool py_number(scan *s, sh_buf *out) {
  size_t start = s->pos;
  bool negative = peek(s) == '-';
  if (negative) s->pos++;
  size_t int_start = s->pos;
  int c = peek(s);
  if (c == '0') s->pos++;
  else if (c >= '1' && c <= '9') digits(s);
  else return false;
  size_t int_end = s->pos;
  bool is_float = false;
  /* Python's number regex takes `.digits` / `e[+-]digits` only when complete. */
  if (peek(s) == '.' && s->pos + 1 < s->len && s->b[s->pos + 1] >= '0' &&
      s->b[s->pos + 1] <= '9') {
    s->pos++;
    digits(s);
    is_float = true;
  }
  if (peek(s) == 'e' || peek(s) == 'E') {
    size_t save = s->pos;
    s->pos++;
    if (peek(s) == '+' || peek(s) == '-') s->pos++;
    if (!digits(s)) s->pos = save;
    else is_float = true;
  }
  if (!is_float) {
    size_t n = int_end - int_start;
    if (n > PY_INT_MAX_DIGITS) return false;
    if (negative && !(n == 1 && s->b[int_start] == '0')) sh_buf_char(out, '-');
    sh_buf_push(out, (const char *)s->b + int_start, n);
    return true;
  }
  size_t n = s->pos - start;
  char *text = xmalloc(n + 1);
  memcpy(text, s->b + start, n);
  text[n] = 0;
  double v = strtod(text, NULL);
  free(text);
  py_float_repr(out, v);
  return true;
}

typedef struct {
  sh_buf key; /* rendered key: rendering is one-to-one, so equal text = equal key */
  sh_buf member;
} py_member;

static bool py_object(scan *s, sh_buf *out, int depth) {
  if (depth > SH_JSON_MAX_DEPTH) return false;
  s->pos++;
  skip_ws(s);
  if (peek(s) == '}') {
    s->pos++;
    sh_buf_push(out, "{}", 2);
    return true;
  }
  py_member *members = NULL;
  size_t n = 0, cap = 0;
  bool ok = false;
  for (;;) {
    if (peek(s) != '"') goto done;
    sh_buf key = {0};
    if (!py_str(s, &key)) {
      sh_buf_free(&key);
      goto done;
    }
    skip_ws(s);
    sh_buf member = {0};
    if (peek(s) != ':') {
      sh_buf_free(&key);
      goto done;
    }
    s->pos++;
    skip_ws(s);
    sh_buf_push(&member, key.ptr, key.len);
    sh_buf_push(&member, ": ", 2);
    if (!py_value(s, &member, depth)) {
      sh_buf_free(&key);
      sh_buf_free(&member);
      goto done;
    }
    /* A dict: a repeated key keeps its first position and takes the last value. */
    size_t i = 0;
    while (i < n && !(members[i].key.len == key.len &&
                      memcmp(members[i].key.ptr, key.ptr, key.len) == 0))
      i++;
    if (i < n) {
      sh_buf_free(&key);
      sh_buf_free(&members[i].member);
      members[i].member = member;
    } else {
      grow((void **)&members, &cap, n + 1, sizeof(py_member));
      members[n++] = (py_member){key, member};
    }
    skip_ws(s);
    int c = peek(s);
    if (c == ',') {
      s->pos++;
      skip_ws(s);
    } else if (c == '}') {
      s->pos++;
      break;
    } else {
      goto done;
    }
  }
  sh_buf_char(out, '{');
  for (size_t i = 0; i < n; i++) {
    if (i) sh_buf_push(out, ", ", 2);
    sh_buf_push(out, members[i].member.ptr, members[i].member.len);
  }
  sh_buf_char(out, '}');
  ok = true;
done:
  for (size_t i = 0; i < n; i++) {
    sh_buf_free(&members[i].key);
    sh_buf_free(&members[i].member);
  }
  free(members);
  return ok;
}

static bool py_array(scan *s, sh_buf *out, int depth) {
  if (depth > SH_JSON_MAX_DEPTH) return false;
  s->pos++;
  sh_buf_char(out, '[');
  skip_ws(s);
  if (peek(s) == ']') {
    s->pos++;
    sh_buf_char(out, ']');
    return true;
  }
  for (;;) {
    if (!py_value(s, out, depth)) return false;
    skip_ws(s);
    int c = peek(s);
    if (c == ',') {
      s->pos++;
      sh_buf_push(out, ", ", 2);
      skip_ws(s);
    } else if (c == ']') {
      s->pos++;
      sh_buf_char(out, ']');
      return true;
    } else {
      return false;
    }
  }
}

static bool py_value(scan *s, sh_buf *out, int depth) {
  int c = peek(s);
  if (c == '{') return py_object(s, out, depth + 1);
  if (c == '[') return py_array(s, out, depth + 1);
  if (c == '"') return py_str(s, out);
  static const char *const words[] = {"true", "false", "null", "NaN", "Infinity", "-Infinity"};
  for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
    size_t n = strlen(words[i]);
    if (s->len - s->pos >= n && memcmp(s->b + s->pos, words[i], n) == 0) {
      s->pos += n;
      sh_buf_push(out, words[i], n);
      return true;
    }
  }
  return py_number(s, out);
}

bool sh_python_redump(sh_buf *out, sh_str text) {
  size_t mark = out->len;
  scan s = {(const unsigned char *)text.ptr, 0, text.len};
  skip_ws(&s);
  bool ok = py_value(&s, out, 0);
  if (ok) {
    skip_ws(&s);
    ok = s.pos == s.len;
  }
  if (!ok) out->len = mark;
  return ok;
}

/* --- config ------------------------------------------------------------------------------ */

const char *sh_json_kind(const sh_json *v) {
  switch (v->type) {
    case SH_JSON_NULL: return "null";
    case SH_JSON_BOOL: return "a boolean";
    case SH_JSON_NUMBER: return "a number";
    case SH_JSON_STRING: return "a string";
    case SH_JSON_ARRAY: return "an array";
    default: return "an object";
  }
}

/* A small JSON reader for the config (values stay alive for the instance's life). */
static bool cfg_value(scan *s, sh_json *v, int depth);

static bool cfg_string(scan *s, sh_str *out) {
  sh_buf b = {0};
  s->pos++;
  for (;;) {
    int c = peek(s);
    if (c < 0 || c < 0x20) goto fail;
    s->pos++;
    if (c == '"') break;
    if (c != '\\') {
      sh_buf_char(&b, (char)c);
      continue;
    }
    c = peek(s);
    s->pos++;
    uint32_t u;
    switch (c) {
      case '"': case '\\': case '/': sh_buf_char(&b, (char)c); continue;
      case 'b': sh_buf_char(&b, '\b'); continue;
      case 'f': sh_buf_char(&b, '\f'); continue;
      case 'n': sh_buf_char(&b, '\n'); continue;
      case 'r': sh_buf_char(&b, '\r'); continue;
      case 't': sh_buf_char(&b, '\t'); continue;
      case 'u':
        if (!hex4(s, &u)) goto fail;
        if (u >= 0xd800 && u <= 0xdbff && peek(s) == '\\' && s->pos + 1 < s->len &&
            s->b[s->pos + 1] == 'u') {
          size_t save = s->pos;
          uint32_t lo;
          s->pos += 2;
          if (hex4(s, &lo) && lo >= 0xdc00 && lo <= 0xdfff) {
            u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
          } else {
            s->pos = save;
          }
        }
        utf8_push(&b, (u >= 0xd800 && u <= 0xdfff) ? 0xfffd : u);
        continue;
      default:
        goto fail;
    }
  }
  out->len = b.len;
  out->ptr = b.ptr ? b.ptr : "";
  return true;
fail:
  sh_buf_free(&b);
  return false;
}

static bool cfg_value(scan *s, sh_json *v, int depth) {
  memset(v, 0, sizeof *v);
  int c = peek(s);
  if (c == '{' || c == '[') {
    if (depth >= SH_JSON_MAX_DEPTH) return false;
    bool object = c == '{';
    v->type = object ? SH_JSON_OBJECT : SH_JSON_ARRAY;
    s->pos++;
    skip_ws(s);
    if (peek(s) == (object ? '}' : ']')) {
      s->pos++;
      return true;
    }
    size_t cap = 0;
    for (;;) {
      grow((void **)&v->items, &cap, v->count + 1, sizeof(sh_json));
      if (object) {
        size_t kcap = cap;
        v->keys = xrealloc(v->keys, kcap * sizeof(sh_str));
        if (peek(s) != '"' || !cfg_string(s, &v->keys[v->count])) return false;
        skip_ws(s);
        if (peek(s) != ':') return false;
        s->pos++;
        skip_ws(s);
      }
      if (!cfg_value(s, &v->items[v->count], depth + 1)) return false;
      v->count++;
      skip_ws(s);
      c = peek(s);
      if (c == ',') {
        s->pos++;
        skip_ws(s);
      } else if (c == (object ? '}' : ']')) {
        s->pos++;
        return true;
      } else {
        return false;
      }
    }
  }
  if (c == '"') {
    v->type = SH_JSON_STRING;
    return cfg_string(s, &v->string);
  }
  if (v_literal(s, "true")) return v->type = SH_JSON_BOOL, v->boolean = true, true;
  if (v_literal(s, "false")) return v->type = SH_JSON_BOOL, true;
  if (v_literal(s, "null")) return v->type = SH_JSON_NULL, true;
  size_t start = s->pos;
  if (!v_number(s)) return false;
  v->type = SH_JSON_NUMBER;
  v->string = (sh_str){(const char *)s->b + start, s->pos - start};
  return true;
}

struct sh_config {
  sh_json root;
  bool *taken;
  const char **known;
  size_t nknown;
};

const sh_json *sh_config_take(sh_config *cfg, const char *key) {
  cfg->known = xrealloc(cfg->known, (cfg->nknown + 1) * sizeof(char *));
  cfg->known[cfg->nknown++] = key;
  const sh_json *found = NULL;
  sh_str k = sh_cstr(key);
  for (size_t i = 0; i < cfg->root.count; i++) {
    if (sh_str_eq(cfg->root.keys[i], k)) {
      cfg->taken[i] = true;
      found = &cfg->root.items[i]; /* a repeated key: the last one wins */
    }
  }
  return found && found->type != SH_JSON_NULL ? found : NULL;
}

bool sh_config_string(sh_config *cfg, const char *key, sh_str *out, char **err) {
  const sh_json *v = sh_config_take(cfg, key);
  *out = (sh_str){NULL, 0};
  if (!v) return false;
  if (v->type != SH_JSON_STRING) {
    *err = sh_format("config key `%s`: expected a string, got %s", key, sh_json_kind(v));
    return false;
  }
  *out = v->string;
  return true;
}

static int cmp_cstr(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static char *config_finish(sh_config *cfg) {
  for (size_t i = 0; i < cfg->root.count; i++) {
    if (cfg->taken[i]) continue;
    sh_str key = cfg->root.keys[i];
    if (!cfg->nknown) {
      return sh_format("unknown config key `%.*s`: this plugin takes no config", (int)key.len,
                       key.ptr);
    }
    qsort(cfg->known, cfg->nknown, sizeof(char *), cmp_cstr);
    sh_buf list = {0};
    for (size_t k = 0; k < cfg->nknown; k++) {
      if (k && strcmp(cfg->known[k], cfg->known[k - 1]) == 0) continue;
      if (list.len) sh_buf_push(&list, ", ", 2);
      sh_buf_cstr(&list, cfg->known[k]);
    }
    char *msg = sh_format("unknown config key `%.*s`; known keys here: %.*s", (int)key.len,
                          key.ptr, (int)list.len, list.ptr);
    sh_buf_free(&list);
    return msg;
  }
  return NULL;
}

/* --- emits and errors ------------------------------------------------------------------------ */

static formatter_option_string_t opt_dup(sh_str s) {
  formatter_option_string_t o = {0};
  if (s.ptr) {
    o.is_some = true;
    o.val = wit_dup(s);
  }
  return o;
}

void sh_emit_hec(sh_emits *out, sh_buf *body, bool json_body,
                 shipper_plugin_types_timestamp_t time, sh_str host, sh_str source,
                 sh_str sourcetype, sh_str index) {
  grow((void **)&out->ptr, &out->cap, out->len + 1, sizeof(formatter_emit_t));
  formatter_emit_t *e = &out->ptr[out->len++];
  memset(e, 0, sizeof *e);
  e->payload.tag = SHIPPER_PLUGIN_TYPES_PAYLOAD_HEC;
  shipper_plugin_types_hec_event_t *ev = &e->payload.val.hec;
  ev->body.tag = json_body ? SHIPPER_PLUGIN_TYPES_HEC_BODY_JSON : SHIPPER_PLUGIN_TYPES_HEC_BODY_TEXT;
  if (json_body) ev->body.val.json = sh_buf_take(body);
  else ev->body.val.text = sh_buf_take(body);
  ev->time.is_some = true;
  ev->time.val = time;
  ev->host = opt_dup(host);
  ev->source = opt_dup(source);
  ev->sourcetype = opt_dup(sourcetype);
  ev->index = opt_dup(index);
}

void sh_record_error_set(sh_record_error *err, shipper_plugin_types_error_kind_t kind,
                         const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  free(err->message);
  err->kind = kind;
  err->message = vformat(fmt, ap);
  va_end(ap);
}

/* --- the export glue ------------------------------------------------------------------------- */

static void *plugin_state;
static bool plugin_ready;

bool exports_formatter_init(formatter_string_t *config, formatter_plugin_info_t *ret,
                            formatter_string_t *err) {
  sh_config *cfg = xmalloc(sizeof *cfg);
  memset(cfg, 0, sizeof *cfg);
  scan s = {config->ptr, 0, config->len};
  skip_ws(&s);
  bool parsed = cfg_value(&s, &cfg->root, 0);
  skip_ws(&s);
  char *message = NULL;
  if (!parsed || s.pos != s.len) {
    message = sh_format("plugin config is not valid JSON (at byte %zu)", s.pos);
  } else if (cfg->root.type != SH_JSON_OBJECT) {
    message = sh_format("plugin config must be a JSON object, got %s", sh_json_kind(&cfg->root));
  } else {
    cfg->taken = xmalloc(cfg->root.count * sizeof(bool));
    memset(cfg->taken, 0, cfg->root.count * sizeof(bool));
    void *state = NULL;
    message = plugin_init(cfg, &state);
    if (!message) message = config_finish(cfg);
    if (!message) {
      plugin_state = state;
      plugin_ready = true;
    }
  }
  /* The config tree stays allocated: the plugin may keep pointers into it. */
  formatter_string_free(config);
  if (message) {
    *err = wit_take_cstr(message);
    return false;
  }
  ret->name = wit_dup(sh_cstr(PLUGIN_NAME));
  ret->version = wit_dup(sh_cstr(PLUGIN_VERSION));
  ret->sdk = wit_dup(SH_STR(SH_SDK_ID));
  return true;
}

bool exports_formatter_process(formatter_batch_info_t *batch, formatter_list_u8_t *group,
                               formatter_list_result_list_emit_record_error_t *ret,
                               formatter_string_t *err) {
  if (!plugin_ready) {
    *err = wit_take_cstr(sh_format("`process` was called before a successful `init`"));
    formatter_batch_info_free(batch);
    formatter_list_u8_free(group);
    return false;
  }
  sh_group g = {batch, {"", 0}, {"", 0}, NULL, 0};
  size_t nlogs = 0;
  wire_error we;
  if (!scan_group(group->ptr, group->len, &g, &nlogs, &we)) {
    *err = wit_take_cstr(sh_format(
        "the LogGroup passed to `process` is not valid protobuf (%s at byte %zu); this is a "
        "host bug or corrupt data",
        we.what, we.offset));
    call_free_all();
    formatter_batch_info_free(batch);
    formatter_list_u8_free(group);
    return false;
  }
  formatter_result_list_emit_record_error_t *results =
      nlogs ? xmalloc(nlogs * sizeof *results) : NULL;
  for (size_t i = 0; i < nlogs; i++) {
    formatter_result_list_emit_record_error_t *r = &results[i];
    memset(r, 0, sizeof *r);
    sh_log log;
    if (!decode_log(group->ptr, logs_buf[2 * i], logs_buf[2 * i + 1], &log, &we)) {
      r->is_err = true;
      r->val.err.kind = SHIPPER_PLUGIN_TYPES_ERROR_KIND_INVALID_INPUT;
      r->val.err.message = wit_take_cstr(
          sh_format("the log is not a valid SLS Log message: %s at byte %zu", we.what, we.offset));
      continue;
    }
    sh_emits out = {0};
    sh_record_error rerr = {SHIPPER_PLUGIN_TYPES_ERROR_KIND_INTERNAL, NULL};
    if (plugin_format(plugin_state, &g, &log, &out, &rerr)) {
      if (!out.len) {
        free(out.ptr);
        out.ptr = NULL;
      }
      r->val.ok.ptr = out.ptr;
      r->val.ok.len = out.len;
      free(rerr.message);
    } else {
      for (size_t k = 0; k < out.len; k++) formatter_emit_free(&out.ptr[k]);
      free(out.ptr);
      r->is_err = true;
      r->val.err.kind = rerr.kind;
      r->val.err.message = wit_take_cstr(
          rerr.message ? rerr.message : sh_format("the plugin failed this log without a reason"));
    }
  }
  call_free_all();
  formatter_batch_info_free(batch);
  formatter_list_u8_free(group);
  ret->ptr = results;
  ret->len = nlogs;
  return true;
}
