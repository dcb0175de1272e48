// Shared by every page after login: the header (navigation, operator,
// logout), JSON fetches with the session's CSRF token on actions, the live
// stream, and small formatting helpers. Data always reaches the page via
// textContent, never as HTML.
'use strict';
const IC = (() => {
  let csrf = null;
  const pages = [['/', 'Fleet'], ['/certificates', 'Certificates'], ['/rollouts', 'Rollouts'],
    ['/events', 'Security events'], ['/audit', 'Audit log']];

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
    return e;
  }

  async function get(path) {
    const r = await fetch(path, {credentials: 'same-origin'});
    if (r.status === 401) { window.location.assign('/login'); throw new Error('unauthenticated'); }
    const j = await r.json();
    if (!r.ok) throw new Error(j.detail || j.error || r.status);
    return j;
  }

  async function post(path) {
    if (csrf === null) csrf = (await get('/api/v1/session')).csrf_token;
    const r = await fetch(path, {method: 'POST', credentials: 'same-origin',
      headers: {'X-CSRF-Token': csrf}});
    const j = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(j.detail || j.error || r.status);
    return j;
  }

  function time(t) {
    if (!t) return '—';
    return new Date(t * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  }

  function ago(t) {
    if (!t) return 'never';
    const s = Math.max(0, Math.round(Date.now() / 1000 - t));
    if (s < 90) return s + ' s ago';
    if (s < 5400) return Math.round(s / 60) + ' min ago';
    if (s < 172800) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' d ago';
  }

  function badge(text, cls) { return el('span', {class: 'badge ' + cls, text}); }

  function table(head, rows, caption) {
    const t = el('table', {}, caption ? el('caption', {class: 'muted', text: caption}) : null);
    const tr = el('tr');
    for (const h of head) tr.append(el('th', {scope: 'col', text: h}));
    t.append(el('thead', {}, tr));
    const body = el('tbody');
    for (const r of rows) body.append(el('tr', {}, ...r.map((c) =>
      c instanceof Node ? el('td', {}, c) : el('td', {text: c === undefined ? '' : String(c)}))));
    t.append(body);
    return t;
  }

  async function header() {
    const here = window.location.pathname;
    const nav = el('nav', {'aria-label': 'Console'});
    for (const [href, name] of pages) {
      const a = el('a', {href, text: name});
      if (href === here) a.setAttribute('aria-current', 'page');
      nav.append(a);
    }
    const who = el('span', {class: 'who', id: 'who'});
    const out = el('button', {type: 'button', id: 'logout', text: 'Log out', onclick: async () => {
      try { await post('/logout'); } finally { window.location.assign('/login'); }
    }});
    document.body.prepend(el('header', {}, el('span', {class: 'brand', text: 'IoT fleet console'}),
      nav, who, out));
    const s = await get('/api/v1/session');
    csrf = s.csrf_token;
    who.textContent = s.operator;
  }

  // The live stream: handlers by event type; the browser reconnects.
  function stream(handlers) {
    const es = new EventSource('/api/v1/stream');
    for (const [type, fn] of Object.entries(handlers))
      es.addEventListener(type, (ev) => fn(JSON.parse(ev.data)));
    return es;
  }

  return {el, get, post, time, ago, badge, table, header, stream};
})();
