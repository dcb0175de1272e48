// The login form: posts JSON to /login (same origin, so the browser sends
// our Origin), then goes to the fleet page. No inline script: CSP forbids it.
'use strict';
document.getElementById('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const err = document.getElementById('login-error');
  err.textContent = '';
  const body = JSON.stringify({
    operator: document.getElementById('operator').value,
    password: document.getElementById('password').value,
  });
  try {
    const r = await fetch('/login', {
      method: 'POST', headers: {'Content-Type': 'application/json'}, body,
      credentials: 'same-origin',
    });
    if (r.ok) {
      window.location.assign('/');
      return;
    }
    const j = await r.json().catch(() => ({}));
    err.textContent = j.detail || ('Login refused (' + r.status + ')');
  } catch (e) {
    err.textContent = 'The console did not answer.';
  }
});
