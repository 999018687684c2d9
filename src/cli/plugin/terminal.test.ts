import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatTable } from './output.ts';
import { escapeTerminal, escapeTerminalLines } from './terminal.ts';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// eslint-disable-next-line no-control-regex
const CONTROL_BUT_LF = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;
/** Any string, with control characters (C0, DEL, C1) well represented. */
const hostile = fc.string({
  unit: fc.oneof(fc.integer({ min: 0, max: 0x9f }).map((c) => String.fromCharCode(c)), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 })),
  maxLength: 200,
});
/** Text without a control character. */
const printable = fc.string({ unit: 'grapheme', maxLength: 200 }).map((s) => s.replace(new RegExp(CONTROL, 'g'), ''));

describe('escapeTerminal', () => {
  it('shows the sequences of the issue inert, as kubectl does for ESC and CR', () => {
    expect(escapeTerminal('\x1b]0;pwned\x07\x1b[2J')).toBe('^[]0;pwned^G^[[2J');
    expect(escapeTerminal('a\rb\nc\td')).toBe('a\\rb\\nc\\td');
    expect(escapeTerminal('\u009b31m\x7f\x00')).toBe('\\u009b31m^?^@');
    expect(escapeTerminalLines('one\ntwo\x1b[K\r')).toBe('one\ntwo^[[K\\r');
  });

  it('never outputs a C0 or C1 control character or DEL, whatever the input (property)', () => {
    fc.assert(fc.property(hostile, (s) => {
      expect(escapeTerminal(s)).not.toMatch(CONTROL);
      expect(escapeTerminalLines(s)).not.toMatch(CONTROL_BUT_LF);
    }), { numRuns: 2000 });
  });

  it('keeps printable text unchanged, including every non-ASCII character outside C1 (property)', () => {
    fc.assert(fc.property(printable, (s) => {
      expect(escapeTerminal(s)).toBe(s);
      expect(escapeTerminalLines(s)).toBe(s);
    }), { numRuns: 2000 });
  });

  it('keeps the printable parts of a string in order, only replacing the controls (property)', () => {
    fc.assert(fc.property(hostile, (s) => {
      expect(escapeTerminal(s).length).toBeGreaterThanOrEqual(s.length);
      expect(escapeTerminal(s.replace(new RegExp(CONTROL, 'g'), ''))).toBe(s.replace(new RegExp(CONTROL, 'g'), ''));
    }), { numRuns: 500 });
  });

  it('makes a table whose every row is one line, with nothing left to drive the terminal (property)', () => {
    fc.assert(fc.property(fc.array(fc.tuple(hostile, hostile), { maxLength: 10 }), (rows) => {
      const out = formatTable(['A', 'B'], rows.map(([a, b]) => [a, b]));
      expect(out).not.toMatch(CONTROL_BUT_LF);
      expect(out.split('\n')).toHaveLength(rows.length + 2);
    }), { numRuns: 500 });
  });
});
