// The fleet table: filter, sort (column buttons), CSV export; revocations
// and last-seen times refreshed every few seconds, new readings live.
'use strict';
(async () => {
  const {el} = IC;
  await IC.header();
  const content = document.getElementById('content');
  const state = {q: '', state: '', sort: 'id', order: 'asc'};
  const cols = [['id', 'Device'], ['state', 'Certificate'], ['last_seen', 'Last seen'],
    ['firmware', 'Firmware (slot)'], ['not_after', 'Certificate expiry'], ['gateway', 'Gateway'],
    ['readings_per_min', 'Readings/min'], ['dropped', 'Dropped'], ['class', 'Class']];
  const q = el('input', {id: 'filter-q', type: 'search', placeholder: 'device ID contains'});
  const st = el('select', {id: 'filter-state'});
  for (const [v, t] of [['', 'all'], ['online', 'online'], ['offline', 'offline'],
    ['active', 'active'], ['revoked', 'revoked']]) st.append(el('option', {value: v, text: t}));
  const csv = el('a', {id: 'csv', href: '/api/v1/devices?format=csv', text: 'Export CSV',
    download: 'fleet.csv'});
  const count = el('span', {id: 'device-count', class: 'muted'});
  content.append(el('div', {class: 'toolbar'},
    el('label', {for: 'filter-q'}, 'Search', q), el('label', {for: 'filter-state'}, 'State', st),
    csv, count));
  const holder = el('div', {id: 'fleet'});
  content.append(holder);

  function query() {
    const p = new URLSearchParams();
    if (state.q) p.set('q', state.q);
    if (state.state) p.set('state', state.state);
    p.set('sort', state.sort);
    p.set('order', state.order);
    return p.toString();
  }

  function row(d) {
    const link = el('a', {href: '/device?id=' + encodeURIComponent(d.id), text: d.id});
    const cert = d.revoked ? IC.badge('revoked', 'bad') : IC.badge('active', 'ok');
    const seen = el('span', {}, d.online ? IC.badge('online', 'ok') : IC.badge('offline', 'muted'),
      ' ' + IC.ago(d.last_seen));
    const days = d.cert_days_left;
    const exp = el('span', {class: days < 30 ? 'warn' : '', text: IC.time(d.not_after).slice(0, 10) +
      ' (' + days + ' d)'});
    const fw = d.firmware ? d.firmware + (d.slot ? ' (' + d.slot + ')' : '') : '—';
    return [link, cert, seen, fw, exp, d.gateway || '—', d.readings_per_min,
      d.dropped, d.class || '—'];
  }

  async function load() {
    const data = await IC.get('/api/v1/devices?' + query());
    csv.href = '/api/v1/devices?format=csv&' + query();
    count.textContent = data.count + ' devices';
    const t = el('table', {id: 'fleet-table'},
      el('caption', {class: 'muted', text: 'Every device of the registry'}));
    const tr = el('tr');
    for (const [key, name] of cols) {
      const sorted = state.sort === key;
      const th = el('th', {scope: 'col', 'aria-sort': sorted ?
        (state.order === 'asc' ? 'ascending' : 'descending') : 'none'});
      th.append(el('button', {type: 'button', text: name + (sorted ? (state.order === 'asc' ?
        ' ▲' : ' ▼') : ''), onclick: () => {
        state.order = sorted && state.order === 'asc' ? 'desc' : 'asc';
        state.sort = key;
        load();
      }}));
      tr.append(th);
    }
    t.append(el('thead', {}, tr));
    const body = el('tbody');
    for (const d of data.devices) {
      const r = el('tr', {'data-device': d.id, 'data-state': d.state});
      for (const c of row(d)) r.append(c instanceof Node ? el('td', {}, c) :
        el('td', {text: String(c)}));
      body.append(r);
    }
    t.append(body);
    holder.replaceChildren(t);
  }

  let timer = null;
  q.addEventListener('input', () => { state.q = q.value.trim(); clearTimeout(timer);
    timer = setTimeout(load, 250); });
  st.addEventListener('change', () => { state.state = st.value; load(); });
  await load();
  setInterval(load, 3000);
})().catch((e) => { document.getElementById('status').textContent = String(e.message || e); });
