// One device: identity, certificate history, firmware history, security
// events, and a live plot per sensor (Chart.js, fed by the stream).
'use strict';
(async () => {
  const {el} = IC;
  await IC.header();
  const id = new URLSearchParams(window.location.search).get('id') || '';
  const content = document.getElementById('content');
  document.getElementById('title').textContent = 'Device ' + id;
  document.title = 'Device ' + id + ' · IoT fleet console';
  const d = await IC.get('/api/v1/devices/' + encodeURIComponent(id));

  const facts = el('dl', {class: 'facts', id: 'facts'});
  const fact = (k, v) => facts.append(el('dt', {text: k}), el('dd', {}, v));
  fact('Certificate', d.revoked ? IC.badge('revoked ' + IC.time(d.revoked_at), 'bad') :
    IC.badge('active', 'ok'));
  fact('Online', d.online ? IC.badge('online', 'ok') : IC.badge('offline', 'muted'));
  fact('Last seen', IC.time(d.last_seen) + ' (' + IC.ago(d.last_seen) + ')');
  fact('Gateway', d.gateway || '—');
  fact('Firmware', (d.firmware || '—') + (d.secure_version ? ' (secure version ' +
    d.secure_version + ')' : ''));
  fact('Running slot', d.slot || '—');
  fact('Class', d.class || '—');
  fact('Boots, last reset', (d.boot_count ?? '—') + ', ' + (d.reset_reason || '—'));
  fact('Readings/min, dropped', d.readings_per_min + ', ' + d.dropped);
  content.append(facts);

  content.append(el('h2', {text: 'Latest readings'}));
  const grid = el('div', {class: 'grid', id: 'plots'});
  content.append(grid);
  const charts = {};
  function plot(name, unit) {
    if (charts[name]) return charts[name];
    const latest = el('span', {class: 'live', id: 'latest-' + name});
    const canvas = el('canvas', {role: 'img', 'aria-label': name + ' over time'});
    grid.append(el('div', {class: 'card'}, el('h3', {text: name + (unit ? ' (' + unit + ')' :
      '')}), el('p', {}, 'now: ', latest), canvas));
    const chart = new Chart(canvas, {type: 'line', data: {labels: [], datasets: [{label: name,
      data: [], borderColor: '#0b57d0', pointRadius: 2, tension: 0.2}]},
    options: {animation: false, responsive: true, plugins: {legend: {display: false}},
      scales: {x: {ticks: {maxTicksLimit: 6}}}}});
    charts[name] = {chart, latest};
    return charts[name];
  }
  function add(msg) {
    for (const v of msg.values || []) {
      if (typeof v.v !== 'number') continue;
      const p = plot(v.n, v.u);
      const t = new Date(((msg.t || msg.rx) + (v.t || 0)) * 1000).toISOString().slice(11, 19);
      p.chart.data.labels.push(t);
      p.chart.data.datasets[0].data.push(v.v);
      if (p.chart.data.labels.length > 60) {
        p.chart.data.labels.shift();
        p.chart.data.datasets[0].data.shift();
      }
      p.latest.textContent = String(v.v) + (v.u ? ' ' + v.u : '') + ' at ' + t;
      p.chart.update();
    }
  }
  for (const m of d.readings) add(m);
  if (!d.readings.length) grid.append(el('p', {class: 'muted', id: 'no-readings',
    text: 'No reading received since the console started; new ones appear here.'}));
  IC.stream({reading: (m) => {
    if (m.device !== id) return;
    const none = document.getElementById('no-readings');
    if (none) none.remove();
    add(m);
  }});

  content.append(el('h2', {text: 'Certificates'}));
  content.append(IC.table(['Serial', 'Not before', 'Not after', 'State'], d.certificates.map(
    (c) => [c.serial, IC.time(c.not_before), IC.time(c.not_after), c.revoked ?
      (c.revoke_reason || 'revoked') + ' ' + IC.time(c.revoked_at) : 'active'])));
  content.append(el('h2', {text: 'Firmware history'}));
  content.append(d.firmware_history.length ? IC.table(['Rollout', 'Version', 'Wave', 'State',
    'Reason', 'Updated'], d.firmware_history.map((f) => [f.rollout, f.version, f.wave, f.state,
    f.reason || '', IC.time(f.updated)])) : el('p', {class: 'muted', text: 'In no rollout.'}));
  content.append(el('h2', {text: 'Security events'}));
  content.append(d.events.length ? IC.table(['Received', 'Type', 'Severity', 'Acknowledged'],
    d.events.map((e) => [IC.time(e.received), e.type, e.severity, e.acknowledged ?
      e.acknowledged_by : 'no'])) : el('p', {class: 'muted', text: 'None.'}));
})().catch((e) => { document.getElementById('status').textContent = String(e.message || e); });
