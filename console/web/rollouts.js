// Rollouts: state, pause reason, per-wave progress, and the operator's
// pause / resume / abort (POST with the CSRF token; in the audit log).
'use strict';
(async () => {
  const {el} = IC;
  await IC.header();
  const content = document.getElementById('content');
  const status = document.getElementById('status');
  const holder = el('div', {id: 'rollouts'});
  content.append(holder);

  function waves(r) {
    return IC.table(['Wave', 'Devices', 'Started', 'Confirmed', 'Failed', 'Progress'],
      r.waves.map((w) => {
        const pct = w.devices ? Math.round(100 * w.confirmed / w.devices) : 0;
        const bar = el('div', {class: 'progress', role: 'progressbar', 'aria-valuenow': pct,
          'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-label': 'wave ' + w.wave});
        const fill = el('span');
        fill.style.width = pct + '%';
        bar.append(fill);
        return [w.wave === 0 ? 'canary' : w.wave + ' (' + w.target_percent + ' %)' +
          (w.begun ? '' : ' not begun'), w.devices, w.started, w.confirmed, w.failed, bar];
      }));
  }

  function act(r, verb) {
    return el('button', {type: 'button', id: verb + '-' + r.name, text: verb[0].toUpperCase() +
      verb.slice(1), onclick: async () => {
      if (verb === 'abort' && !window.confirm('Abort ' + r.name + ' for good?')) return;
      try {
        await IC.post('/api/v1/rollouts/' + encodeURIComponent(r.name) + '/' + verb);
        status.textContent = 'Rollout ' + r.name + ': ' + verb + ' done.';
      } catch (e) {
        status.textContent = 'Rollout ' + r.name + ': ' + verb + ' refused: ' + e.message;
      }
      load();
    }});
  }

  function card(r) {
    const stateCls = {running: 'ok', paused: 'warn', aborted: 'bad', completed: 'muted'};
    const head = el('h2', {}, r.name + ' ', IC.badge(r.state, stateCls[r.state] || ''));
    const facts = el('dl', {class: 'facts'});
    const fact = (k, v) => facts.append(el('dt', {text: k}), el('dd', {text: String(v)}));
    fact('Release', r.version + ' for class ' + r.class + (r.security ? ' (security)' : ''));
    fact('Devices', r.devices + ': ' + Object.entries(r.counts).filter(([, n]) => n > 0)
      .map(([s, n]) => n + ' ' + s).join(', '));
    if (r.state === 'paused') fact('Paused because', r.pause_reason === 'failure_threshold' ?
      'failures reached the threshold' : 'an operator paused it');
    fact('Updated', IC.time(r.updated));
    const buttons = el('p', {class: 'toolbar'});
    if (r.state === 'running') buttons.append(act(r, 'pause'));
    if (r.state === 'paused') buttons.append(act(r, 'resume'));
    if (r.state === 'running' || r.state === 'paused') buttons.append(act(r, 'abort'));
    return el('section', {class: 'card', 'data-rollout': r.name, 'data-state': r.state}, head,
      facts, buttons, waves(r));
  }

  async function load() {
    const data = await IC.get('/api/v1/rollouts');
    holder.replaceChildren(...(data.rollouts.length ? data.rollouts.map(card) :
      [el('p', {class: 'muted', text: 'No rollout.'})]));
  }
  await load();
  setInterval(load, 5000);
})().catch((e) => { document.getElementById('status').textContent = String(e.message || e); });
