/** Pages that only say something: an error, or how to sign in. */
import { html, type Html } from '../html.ts';

export function messagePage(title: string, message: string, back = true): Html {
  return html`<h1>${title}</h1>
<p class="notice error" role="alert">${message}</p>
${back ? html`<p><a class="button" href="/">Deployments</a></p>` : ''}`;
}
