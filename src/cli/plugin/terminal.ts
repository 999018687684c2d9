/**
 * Everything the plugin writes goes through here, so that text from the
 * cluster (names, descriptions, condition messages, events, error messages
 * quoting the apiserver) can never drive the terminal: a description holding
 * `ESC ]0;title BEL` or `ESC [2J` would otherwise retitle the window or clear
 * the screen, and a carriage return or line feed would overwrite or forge a
 * line of a table.
 *
 * This is kubectl's rule since 1.26 (cli-runtime printers.EscapeTerminal:
 * ESC as `^[`, CR as `\r`), extended to every control character: C0
 * (U+0000-U+001F) in caret notation (`^G`, `^[`) except tab, line feed and
 * carriage return (`\t`, `\n`, `\r`), DEL (U+007F) as `^?`, and C1
 * (U+0080-U+009F, e.g. the one-character CSI U+009B) as `\u009b`. Printable
 * text, including every other non-ASCII character, is unchanged.
 *
 * Two writers, and nothing else in the plugin writes to stdout or stderr
 * (eslint.config.js refuses `process.stdout.write` elsewhere):
 * - `text`: human output (tables, describe, messages, errors, help). Every
 *   control character is escaped but the line feeds that separate lines;
 *   the table and describe formatters escape each cell first, line feeds
 *   included, so a value cannot start a line of its own.
 * - `data`: -o json|yaml|jsonpath|name, written exactly (JSON and YAML
 *   escape control characters themselves; a script reads the rest).
 */

/** How one control character is shown. */
function shown(c: number): string {
  if (c === 0x09) return '\\t';
  if (c === 0x0a) return '\\n';
  if (c === 0x0d) return '\\r';
  if (c < 0x20) return `^${String.fromCharCode(c + 0x40)}`;
  if (c === 0x7f) return '^?';
  return `\\u${c.toString(16).padStart(4, '0')}`;
}

// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;
// eslint-disable-next-line no-control-regex
const CONTROLS_BUT_LF = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g;

/** `s` with every C0 and C1 control character and DEL escaped, line feeds included: for one value (a cell, a field). */
export function escapeTerminal(s: string): string {
  return s.replace(CONTROLS, (ch) => shown(ch.charCodeAt(0)));
}

/** The same, keeping line feeds: for text made of whole lines. */
export function escapeTerminalLines(s: string): string {
  return s.replace(CONTROLS_BUT_LF, (ch) => shown(ch.charCodeAt(0)));
}

/** Where the plugin writes: stdout or stderr (a parameter so that tests can capture it). */
export interface Sink {
  write(s: string): unknown;
}

/** Human output on `stream` (default stdout), escaped. */
export function text(s: string, stream: Sink = process.stdout): void {
  stream.write(escapeTerminalLines(s));
}

/** Human output on stderr, escaped. */
export function textErr(s: string): void {
  text(s, process.stderr);
}

/** Machine output on stdout, exact: -o json, yaml, jsonpath and name. */
export function data(s: string): void {
  process.stdout.write(s);
}
