// session-bridge demo: expiry banner, "Stay signed in", logout buttons.
// Plain script, no dependencies. Never touches a token: the token and
// session cookies are HttpOnly; only the CSRF cookie is readable, and its
// value goes into the CSRF header of every state-changing request.
(function () {
  'use strict';

  var body = document.body;
  var csrfCookie = body.dataset.csrfCookie;
  var csrfHeader = body.dataset.csrfHeader;
  var warnBeforeMs = Number(body.dataset.warnBefore) * 1000;

  // Local clock times (ms) at which the credential ends: `end` if idle,
  // `absoluteEnd` at the latest. Computed from the server's `expires_in` so a
  // skewed browser clock does not matter.
  var end = null;
  var absoluteEnd = null;
  var checking = false;

  function byId(id) { return document.getElementById(id); }

  function csrfToken() {
    var parts = document.cookie ? document.cookie.split('; ') : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf('=');
      if (parts[i].slice(0, eq) === csrfCookie) {
        return decodeURIComponent(parts[i].slice(eq + 1));
      }
    }
    return '';
  }

  function post(url) {
    var headers = { 'accept': 'application/json' };
    headers[csrfHeader] = csrfToken();
    return fetch(url, { method: 'POST', credentials: 'same-origin', headers: headers });
  }

  function getJson(url) {
    return fetch(url, { credentials: 'same-origin', headers: { 'accept': 'application/json' } });
  }

  function iso(seconds) {
    return new Date(seconds * 1000).toISOString().slice(0, 19).replace('T', ' ') + ' UTC';
  }

  function formatLeft(ms) {
    var s = Math.max(0, Math.ceil(ms / 1000));
    if (s < 120) { return s + ' s'; }
    return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
  }

  // `info`: the JSON of GET /session or POST /demo/session/extend.
  function setExpiry(info) {
    var c = info.credential;
    var now = Date.now();
    var serverNow = c.expires_at - info.expires_in;
    end = now + info.expires_in * 1000;
    absoluteEnd = c.absolute_expires_at ? now + (c.absolute_expires_at - serverNow) * 1000 : null;
    var shown = byId('session-expires');
    if (shown && c.kind === 'session') {
      shown.dataset.ts = String(c.expires_at);
      shown.textContent = iso(c.expires_at);
    }
    body.dataset.expiresAt = String(c.expires_at);
    tick();
  }

  function signedOut() {
    end = null;
    var banner = byId('expiry-banner');
    banner.hidden = false;
    banner.classList.add('ended');
    byId('expiry-message').textContent = 'Your session has ended.';
    byId('stay-signed-in').hidden = true;
    byId('sign-in-again').hidden = false;
    body.dataset.signedOut = 'true';
  }

  function refreshExpiry() {
    return getJson('/session').then(function (r) {
      if (r.status === 401) { signedOut(); return null; }
      if (!r.ok) { return null; }
      return r.json().then(function (info) { setExpiry(info); return info; });
    }, function () { return null; });
  }

  // Once a second, locally: no request until the credential is due to end.
  function tick() {
    if (end === null) { return; }
    var left = end - Date.now();
    var banner = byId('expiry-banner');
    if (left <= 0) {
      if (!checking) {
        // Another tab may have extended it: ask before saying it ended.
        checking = true;
        refreshExpiry().then(function () { checking = false; });
      }
      return;
    }
    if (left > warnBeforeMs) {
      banner.hidden = true;
      return;
    }
    var atLimit = absoluteEnd !== null && absoluteEnd - end < 1000;
    byId('expiry-message').textContent = atLimit
      ? 'Your session reaches its maximum length in ' + formatLeft(left) + '. Sign in again then.'
      : 'Your session ends in ' + formatLeft(left) + '.';
    byId('stay-signed-in').hidden = atLimit;
    banner.hidden = false;
  }

  function staySignedIn() {
    var button = byId('stay-signed-in');
    button.disabled = true;
    post('/demo/session/extend').then(function (r) {
      if (r.status === 401) { signedOut(); return; }
      if (!r.ok) { return; }
      return r.json().then(setExpiry);
    }).finally(function () { button.disabled = false; });
  }

  function logout(url) {
    post(url).then(function (r) {
      if (r.ok || r.status === 401) {
        window.location.assign('/login?next=' + encodeURIComponent(window.location.pathname));
      }
    });
  }

  byId('stay-signed-in').addEventListener('click', staySignedIn);
  byId('logout').addEventListener('click', function () { logout('/logout'); });
  byId('logout-all').addEventListener('click', function () { logout('/logout/all'); });
  window.setInterval(tick, 1000);
  refreshExpiry();

  // For app.js.
  window.sessionBridgeDemo = { post: post, getJson: getJson, iso: iso, refreshExpiry: refreshExpiry, signedOut: signedOut };
})();
