// Certificates of every kind that expire within N days.
'use strict';
(async () => {
  const {el} = IC;
  await IC.header();
  const content = document.getElementById('content');
  const days = el('input', {id: 'days', type: 'number', min: '0', max: '3650', value: '30'});
  const holder = el('div');
  content.append(el('div', {class: 'toolbar'}, el('label', {for: 'days'}, 'Within days', days)),
    holder);
  async function load() {
    const n = Math.max(0, Math.min(3650, parseInt(days.value, 10) || 0));
    const data = await IC.get('/api/v1/certificates?days=' + n);
    holder.replaceChildren(data.certificates.length ? IC.table(['Name', 'Kind', 'Role',
      'Serial', 'Expires', 'Days left'], data.certificates.map((c) => [c.name, c.kind,
      c.role || '', c.serial, IC.time(c.not_after), el('span', {class: c.days_left < 7 ? 'bad' :
        'warn', text: String(c.days_left)})]), 'Not revoked, expiring within ' + n + ' days') :
      el('p', {class: 'muted', text: 'No certificate expires within ' + n + ' days.'}));
  }
  days.addEventListener('change', load);
  await load();
})().catch((e) => { document.getElementById('status').textContent = String(e.message || e); });
