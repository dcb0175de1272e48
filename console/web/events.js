// The security-event inbox: newest first, live, each acknowledged once.
'use strict';
(async () => {
  const {el} = IC;
  await IC.header();
  const content = document.getElementById('content');
  const status = document.getElementById('status');
  const only = el('input', {id: 'unacked', type: 'checkbox'});
  const holder = el('div', {id: 'events'});
  content.append(el('div', {class: 'toolbar'}, el('label', {for: 'unacked', class: 'check'},
    'Not acknowledged only', only)), holder);
  async function load() {
    const data = await IC.get('/api/v1/events' + (only.checked ? '?unacked=1' : ''));
    const sev = {critical: 'bad', high: 'bad', warning: 'warn', medium: 'warn'};
    holder.replaceChildren(data.events.length ? IC.table(['Received', 'Type', 'Severity',
      'Device', 'Detail', 'Acknowledged'], data.events.map((e) => [IC.time(e.received), e.type,
      el('span', {class: sev[e.severity] || '', text: e.severity}), e.device || '—',
      (e.document && (e.document.reason || e.document.detail)) || '',
      e.acknowledged ? e.acknowledged_by + ' ' + IC.time(e.acknowledged_at) :
        el('button', {type: 'button', text: 'Acknowledge', 'aria-label': 'Acknowledge event ' +
          e.id, onclick: async () => {
          try { await IC.post('/api/v1/events/' + e.id + '/ack'); } catch (err) {
            status.textContent = 'Not acknowledged: ' + err.message;
          }
          load();
        }})])) : el('p', {class: 'muted', text: 'No security event.'}));
  }
  only.addEventListener('change', load);
  IC.stream({event: () => load()});
  await load();
})().catch((e) => { document.getElementById('status').textContent = String(e.message || e); });
