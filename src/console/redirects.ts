/**
 * Where the console may send a browser: a page of its own origin, never
 * another site. Every redirect and every page that moves on by itself takes
 * its target from `localTarget`, which answers with a path that a browser
 * resolves against the console's own origin, whatever it was given (`next`
 * after sign-in is chosen by whoever wrote the link).
 *
 * Browsers are lenient in ways a string check misses: they drop tabs and
 * newlines anywhere in a URL (`/\t/evil` is `//evil`), read `\` as `/` in
 * http(s) URLs (`/\evil` is `//evil`), and collapse dot segments
 * (`/a/..//evil` is `//evil`). So the target is parsed with the WHATWG URL
 * parser, as the browser will parse it; what is answered is the parser's own
 * serialization of the path, query and fragment (never the raw input), and
 * only when that serialization starts with exactly one `/`: a browser then
 * resolves it to the same URL on the console's origin. Anything else, and
 * any control character, space or backslash in the input, gives `/`.
 */

/** Longer targets are ignored: a path of the console is far shorter, and the target travels in a cookie during sign-in. */
export const MAX_TARGET_LENGTH = 1024;

/** A stand-in origin to resolve against: only whether the result stays on it matters. */
const BASE = 'http://console.invalid';

/** Characters a browser would drop or reinterpret; none is in a path the console makes. */
// eslint-disable-next-line no-control-regex
const SUSPECT = /[\u0000-\u0020\u007f\\]/;

/** `target` as a path of the console (path, query and fragment) if it is one, else `/`. */
export function localTarget(target: unknown): string {
  if (typeof target !== 'string' || target.length === 0 || target.length > MAX_TARGET_LENGTH) return '/';
  if (target[0] !== '/' || target[1] === '/' || SUSPECT.test(target)) return '/';
  let url: URL;
  try {
    url = new URL(target, BASE);
  } catch {
    return '/';
  }
  if (url.origin !== BASE) return '/';
  // The serialization after the origin: path, query and fragment, with an empty `?` or `#` kept as given.
  const path = url.href.slice(url.origin.length);
  // Percent-encoding may have lengthened it (up to nine times for a non-ASCII character): bound it again.
  return path.startsWith('/') && !path.startsWith('//') && path.length <= MAX_TARGET_LENGTH ? path : '/';
}
