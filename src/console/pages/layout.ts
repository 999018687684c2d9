/** The frame of every page: header with navigation and the signed-in person, main, footer. */
import { html, type Html } from '../html.ts';

export interface Frame {
  title: string;
  /** The signed-in person, with the CSRF token of their sign-out form. */
  person?: { name: string; csrf: string };
  mode: string;
  active?: 'deployments' | 'token';
  flash?: string;
}

export function layout(f: Frame, body: Html): string {
  const link = (href: string, label: string, key: Frame['active']) =>
    html`<li><a href="${href}"${f.active === key ? html` aria-current="page"` : ''}>${label}</a></li>`;
  return '<!doctype html>\n' + html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${f.title} · apikey-operator console</title>
<link rel="stylesheet" href="/static/console.css">
<link rel="icon" href="data:,">
<script src="/static/console.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top"><div class="bar">
<a class="brand" href="/">apikey-operator</a>
${f.person ? html`<nav aria-label="Main"><ul>${link('/', 'Deployments', 'deployments')}${link('/token', 'Token', 'token')}</ul></nav>
<div class="who"><span>Signed in as <strong>${f.person.name}</strong></span>
<form class="inline" method="post" action="/sign-out"><input type="hidden" name="csrf" value="${f.person.csrf}"><button type="submit">Sign out</button></form></div>` : ''}
</div></header>
<main id="main">
${f.flash ? html`<p class="notice info" role="status">${f.flash}</p>` : ''}
${body}
<p id="live-status" class="sr-only" role="status" aria-live="polite"></p>
</main>
<footer>apikey-operator console · ${f.mode} mode · every request is made with your own Kubernetes identity</footer>
</body>
</html>`.text;
}

/** A time as text, in UTC, inside <time>. */
export function when(iso: string | undefined, none = 'never'): Html {
  if (!iso || Number.isNaN(Date.parse(iso))) return html`<span class="muted">${none}</span>`;
  const d = new Date(iso).toISOString();
  return html`<time datetime="${d}">${d.slice(0, 10)} ${d.slice(11, 19)} UTC</time>`;
}

export function errorNotice(message: string | undefined): Html {
  return message ? html`<p class="notice error" role="alert">${message}</p>` : html``;
}
