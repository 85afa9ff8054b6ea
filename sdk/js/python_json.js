// `json.dumps(json.loads(text))` as CPython computes it, for the seed-string event format:
// the seed HEC script parses JSON fields with `json.loads` and serialises the log with
// `json.dumps` (separators ", " and ": ", ensure_ascii). The rules (the Rust SDK's
// sdk/src/json/python.rs follows the same ones):
//
// - accepted beyond strict JSON: NaN, Infinity, -Infinity, lone surrogate escapes;
// - refused like Python: raw control characters in strings, integers of more than 4300
//   digits (CPython's int conversion limit); nesting deeper than 128 is refused too;
// - objects keep the first position of a repeated key with its last value (a dict);
// - integers are written as parsed (-0 becomes 0); other numbers go through float and are
//   written with repr (1e+16, 1e-05, 100.0).

const PY_INT_MAX_DIGITS = 4300;
const MAX_DEPTH = 128;
const HEX = '0123456789abcdef';

/** One UTF-16 code unit escaped as Python's ensure_ascii writes it. */
function pyUnit(u) {
  switch (u) {
    case 0x22:
      return '\\"';
    case 0x5c:
      return '\\\\';
    case 0x0a:
      return '\\n';
    case 0x0d:
      return '\\r';
    case 0x09:
      return '\\t';
    case 0x08:
      return '\\b';
    case 0x0c:
      return '\\f';
    default:
      if (u >= 0x20 && u <= 0x7e) return String.fromCharCode(u);
      return '\\u' + HEX[(u >> 12) & 15] + HEX[(u >> 8) & 15] + HEX[(u >> 4) & 15] + HEX[u & 15];
  }
}

/** A JS string (any UTF-16) as a Python ensure_ascii JSON string. */
export function pyString(s) {
  let out = '"';
  let run = 0;
  for (let i = 0; i < s.length; i++) {
    const u = s.charCodeAt(i);
    if (u >= 0x20 && u <= 0x7e && u !== 0x22 && u !== 0x5c) continue;
    out += s.slice(run, i) + pyUnit(u);
    run = i + 1;
  }
  return out + s.slice(run) + '"';
}

/** repr(value) as CPython writes it ('short' repr style), with json.dumps's spellings of
 * NaN and the infinities. */
export function floatRepr(value) {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  // toExponential() gives the shortest round-trip digits: d[.ddd]e[+-]x.
  const sci = Math.abs(value).toExponential();
  const at = sci.indexOf('e');
  const digits = sci.slice(0, at).replace('.', '');
  const exp = Number(sci.slice(at + 1));
  const sign = value < 0 || Object.is(value, -0) ? '-' : '';
  const decpt = exp + 1;
  if (decpt <= -4 || decpt > 16) {
    const mantissa = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp);
    return `${sign}${mantissa}e${exp < 0 ? '-' : '+'}${e < 10 ? '0' : ''}${e}`;
  }
  if (decpt <= 0) return `${sign}0.${'0'.repeat(-decpt)}${digits}`;
  if (decpt >= digits.length) return `${sign}${digits}${'0'.repeat(decpt - digits.length)}.0`;
  return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
}

class Refused extends Error {}

const refuse = () => {
  throw new Refused();
};

class Parser {
  constructor(text) {
    this.s = text;
    this.pos = 0;
  }

  peek() {
    return this.pos < this.s.length ? this.s.charCodeAt(this.pos) : -1;
  }

  ws() {
    for (;;) {
      const c = this.peek();
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.pos++;
      else return;
    }
  }

  value(depth) {
    const c = this.peek();
    if (c === 0x7b) return this.object(depth + 1);
    if (c === 0x5b) return this.array(depth + 1);
    if (c === 0x22) return pyString(this.string());
    for (const word of ['true', 'false', 'null', 'NaN', 'Infinity', '-Infinity']) {
      if (this.s.startsWith(word, this.pos)) {
        this.pos += word.length;
        return word;
      }
    }
    return this.number();
  }

  object(depth) {
    if (depth > MAX_DEPTH) refuse();
    this.pos++;
    const members = new Map();
    this.ws();
    if (this.peek() === 0x7d) {
      this.pos++;
      return '{}';
    }
    for (;;) {
      if (this.peek() !== 0x22) refuse();
      const key = this.string();
      this.ws();
      if (this.peek() !== 0x3a) refuse();
      this.pos++;
      this.ws();
      // A Map keeps the first position of a repeated key and takes its last value.
      members.set(key, `${pyString(key)}: ${this.value(depth)}`);
      this.ws();
      const c = this.peek();
      if (c === 0x2c) {
        this.pos++;
        this.ws();
      } else if (c === 0x7d) {
        this.pos++;
        break;
      } else refuse();
    }
    return `{${[...members.values()].join(', ')}}`;
  }

  array(depth) {
    if (depth > MAX_DEPTH) refuse();
    this.pos++;
    this.ws();
    if (this.peek() === 0x5d) {
      this.pos++;
      return '[]';
    }
    const items = [];
    for (;;) {
      items.push(this.value(depth));
      this.ws();
      const c = this.peek();
      if (c === 0x2c) {
        this.pos++;
        this.ws();
      } else if (c === 0x5d) {
        this.pos++;
        return `[${items.join(', ')}]`;
      } else refuse();
    }
  }

  hex4() {
    const h = this.s.slice(this.pos, this.pos + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) refuse();
    this.pos += 4;
    return parseInt(h, 16);
  }

  /** A string at its opening quote, decoded to UTF-16 as Python's str holds it (lone
   * surrogates kept; an escaped pair is the same two units). */
  string() {
    this.pos++;
    let out = '';
    for (;;) {
      const start = this.pos;
      let c = this.peek();
      while (c !== -1 && c !== 0x22 && c !== 0x5c && c >= 0x20) {
        this.pos++;
        c = this.peek();
      }
      out += this.s.slice(start, this.pos);
      if (c === 0x22) {
        this.pos++;
        return out;
      }
      if (c !== 0x5c) refuse(); // end of text, or a raw control character
      this.pos++;
      const e = this.peek();
      this.pos++;
      switch (e) {
        case 0x22:
          out += '"';
          break;
        case 0x5c:
          out += '\\';
          break;
        case 0x2f:
          out += '/';
          break;
        case 0x62:
          out += '\b';
          break;
        case 0x66:
          out += '\f';
          break;
        case 0x6e:
          out += '\n';
          break;
        case 0x72:
          out += '\r';
          break;
        case 0x74:
          out += '\t';
          break;
        case 0x75:
          out += String.fromCharCode(this.hex4());
          break;
        default:
          refuse();
      }
    }
  }

  digits() {
    const start = this.pos;
    for (let c = this.peek(); c >= 0x30 && c <= 0x39; c = this.peek()) this.pos++;
    return this.pos - start;
  }

  number() {
    const start = this.pos;
    const negative = this.peek() === 0x2d;
    if (negative) this.pos++;
    const intStart = this.pos;
    const c = this.peek();
    if (c === 0x30) this.pos++;
    else if (c >= 0x31 && c <= 0x39) this.digits();
    else refuse();
    const intEnd = this.pos;
    let isFloat = false;
    // Python's number regex takes `.digits` / `e[+-]digits` only when complete; otherwise
    // the number ends there and the leftover fails the parse later.
    const next = this.s.charCodeAt(this.pos + 1);
    if (this.peek() === 0x2e && next >= 0x30 && next <= 0x39) {
      this.pos++;
      this.digits();
      isFloat = true;
    }
    if (this.peek() === 0x65 || this.peek() === 0x45) {
      const save = this.pos;
      this.pos++;
      if (this.peek() === 0x2b || this.peek() === 0x2d) this.pos++;
      if (this.digits() === 0) this.pos = save;
      else isFloat = true;
    }
    if (!isFloat) {
      const digits = this.s.slice(intStart, intEnd);
      if (digits.length > PY_INT_MAX_DIGITS) refuse();
      return negative && digits !== '0' ? `-${digits}` : digits;
    }
    return floatRepr(Number(this.s.slice(start, this.pos)));
  }
}

/** `json.dumps(json.loads(text))`, or undefined when `json.loads(text)` would raise. */
export function pythonRedump(text) {
  const p = new Parser(text);
  try {
    p.ws();
    const out = p.value(0);
    p.ws();
    return p.pos === text.length ? out : undefined;
  } catch (e) {
    if (e instanceof Refused) return undefined;
    throw e;
  }
}
