// session-bridge demo: the app page's API call. The token rides in the
// HttpOnly token cookie (`credentials: 'same-origin'`); this script never
// sees it. When the API says the token is missing or expired, the script
// asks POST /token for a new cookie (the session proves it) and retries once.
(function () {
  'use strict';

  var demo = window.sessionBridgeDemo;
  function byId(id) { return document.getElementById(id); }

  function needsNewToken(status, error) {
    return status === 401 && error &&
      (error.error === 'missing_credential' ||
        (error.error === 'invalid_token' && error.reason === 'expired'));
  }

  function callApi(retry) {
    return demo.getJson('/demo/api/whoami').then(function (r) {
      return r.json().catch(function () { return null; }).then(function (data) {
        if (retry && needsNewToken(r.status, data)) {
          return demo.post('/token').then(function (t) {
            if (t.ok) { return callApi(false); }
            return { status: r.status, data: data, refreshed: false };
          });
        }
        return { status: r.status, data: data, refreshed: !retry };
      });
    });
  }

  function show(result) {
    var status = byId('api-status');
    var box = byId('api-result');
    var out = byId('api-signed-out');
    status.dataset.status = String(result.status);
    if (result.status === 200 && result.data) {
      var d = result.data;
      byId('api-user').textContent = d.username || d.sub;
      byId('api-sub').textContent = d.sub;
      byId('api-groups').textContent = d.groups.length ? d.groups.join(', ') : '(none)';
      byId('api-credential').textContent = d.credential.kind.replace('_', ' ') +
        (result.refreshed ? ' (renewed through POST /token)' : '');
      var expires = byId('api-token-expires');
      expires.textContent = demo.iso(d.credential.expires_at);
      expires.dataset.ts = String(d.credential.expires_at);
      status.textContent = '200 OK';
      box.hidden = false;
      out.hidden = true;
    } else {
      var code = result.data && result.data.error ? ' (' + result.data.error + ')' : '';
      status.textContent = result.status + code;
      box.hidden = true;
      out.hidden = result.status !== 401;
    }
  }

  function run() {
    callApi(true).then(show, function () { byId('api-status').textContent = 'network error'; });
  }

  byId('call-api').addEventListener('click', run);
  run();
})();
