// The audit log: every login, failed login, logout and action.
'use strict';
(async () => {
  await IC.header();
  const content = document.getElementById('content');
  const data = await IC.get('/api/v1/audit?limit=500');
  const t = IC.table(['Time', 'Operator', 'Address', 'Action', 'Target', 'Result'],
    data.audit.map((a) => [IC.time(a.time), a.operator || '—', a.address, a.action, a.target,
      a.result]), 'Newest first');
  t.id = 'audit-table';
  content.append(t);
})().catch((e) => { document.getElementById('status').textContent = String(e.message || e); });
