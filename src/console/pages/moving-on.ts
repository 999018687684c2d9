/**
 * A page that moves on to a page of the console by itself (and with a link,
 * for a browser that does not): a navigation the page makes, not a redirect
 * of the request. It is how a sign-in ends when the request that completes it
 * came from another site (the identity provider's redirect, or the local
 * sign-in file opened from file://): the browser withholds a SameSite=Strict
 * cookie from a redirect in such a chain, but sends it with a navigation the
 * console's own page makes. Where it moves on to is always a page of the
 * console (redirects.ts).
 */
import type { ServerResponse } from 'node:http';
import { html } from '../html.ts';
import { sendHtml } from '../http.ts';
import { localTarget } from '../redirects.ts';

export function movingOn(res: ServerResponse, heading: string, linkText: string, target: string): void {
  const next = localTarget(target);
  sendHtml(res, 200, '<!doctype html>\n' + html`<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="0;url=${next}">
<title>${heading} · apikey-operator console</title>
<link rel="stylesheet" href="/static/console.css">
</head><body><main id="main"><h1>${heading}</h1><p><a class="button" href="${next}">${linkText}</a></p></main></body></html>`.text);
}
