import { describe, expect, it } from 'vitest';
import { attr, escapeHtml, html } from './html.ts';

describe('html templates', () => {
  it.each([
    ['<script>alert(1)</script>', '&lt;script&gt;alert(1)&lt;/script&gt;'],
    ['"quoted" & \'single\'', '&quot;quoted&quot; &amp; &#39;single&#39;'],
  ])('escapes %s', (input, out) => {
    expect(escapeHtml(input)).toBe(out);
    expect(html`<p>${input}</p>`.text).toBe(`<p>${out}</p>`);
  });

  it('keeps nested Html and arrays of it, and drops undefined and false', () => {
    const items = ['a<', 'b'].map((x) => html`<li>${x}</li>`);
    expect(html`<ul>${items}${undefined}${false}</ul>`.text).toBe('<ul><li>a&lt;</li><li>b</li></ul>');
  });

  it('writes a boolean attribute only when it is on', () => {
    expect(html`<button${attr('disabled', true)}>x</button>`.text).toBe('<button disabled>x</button>');
    expect(html`<button${attr('disabled', false)}>x</button>`.text).toBe('<button>x</button>');
  });
});
