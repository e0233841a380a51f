// Generates js-compat.json: data-log lines and what lib-types' safeJsonParse followed by
// safeStringify makes of them (null where it throws). Run outside the repo, in a directory
// with `npm install @shardeum-foundation/lib-types` done:
//   node js-compat.gen.js > js-compat.json
const { safeJsonParse, safeStringify } = require(
  '@shardeum-foundation/lib-types/build/src/utils/functions/stringify.js');

const nest = (d) => '{"a":'.repeat(d) + '1' + '}'.repeat(d);
const arrays = (d) => '{"x":' + '['.repeat(d - 1) + ']'.repeat(d - 1) + '}';
const lines = [
  ['reserved keys at the top', '{"__proto__":{"x":1},"a":1,"constructor":"c","prototype":[1]}'],
  ['reserved keys nested in objects and arrays', '{"b":{"data":[{"__proto__":1,"y":2},{"constructor":{"prototype":3}}]},"cycle":1}'],
  ['reserved words as values and as parts of keys', '{"__proto__x":1,"a":"__proto__","myconstructor":2,"prototypes":["prototype"]}'],
  ['a reserved key spelt with an escape', '{"\\u005f_proto__":1,"a":2}'],
  ['a lone high surrogate', '{"a":"x\\ud800y"}'],
  ['a lone low surrogate, upper-case hex', '{"a":"\\uDC00"}'],
  ['a high surrogate before a non-surrogate escape', '{"a":"\\ud800\\u0041"}'],
  ['two high surrogates, then a pair', '{"a":"\\ud83d\\ud83d\\ude00"}'],
  ['lone surrogates in keys sort by code unit', '{"\\uffff":1,"\\ud800":2,"\\ud83d\\ude00":3,"z":4,"\\udc00":5}'],
  ['U+10FFFF written raw and escaped', '{"a":"\u{10FFFF}\\udbff\\udfff"}'],
  ['numbers beyond a double', '{"a":1e400,"b":-1e400,"c":[1E+999,1e-400],"d":1e308}'],
  ['an integer of 400 digits', '{"a":' + '9'.repeat(400) + '}'],
  ['129 nested objects', nest(129)],
  ['512 nested levels, arrays', arrays(512)],
  ['512 nested objects', nest(511)],
  ['3000 nested objects (too deep for node)', nest(3000)],
];
const out = lines.map(([name, line]) => {
  let canonical = null;
  try {
    canonical = safeStringify(safeJsonParse(line));
  } catch (e) {
    canonical = null;
  }
  return { name, line, canonical };
});
process.stdout.write(JSON.stringify({ source: '@shardeum-foundation/lib-types safeJsonParse + safeStringify', vectors: out }, null, 1) + '\n');
