/*! Companin chat widget. Plain JavaScript, no dependencies.
 *
 * <script src="https://app.example.com/widget.js" data-client-id="YOUR_CLIENT_ID"
 *   data-assistant-id="YOUR_ASSISTANT_ID" data-config-id="YOUR_CONFIG_ID"
 *   data-instance-id="primary-widget"></script>
 *
 * Everything renders inside a shadow root, so the page's CSS cannot reach the
 * widget and the widget's CSS cannot reach the page. The API base is where
 * this script was loaded from (override with data-api-base).
 */
(function () {
  'use strict';
  var VERSION = '__COMPANIN_WIDGET_VERSION__';
  var script = document.currentScript;
  if (!script || !script.src) return;
  var ds = script.dataset || {};
  var clientId = (ds.clientId || '').trim();
  var assistantId = (ds.assistantId || '').trim();
  var configId = (ds.configId || '').trim();
  var instanceId = (ds.instanceId || 'default').trim();
  var apiBase = (ds.apiBase || new URL('./', script.src).href).replace(/\/+$/, '') + '/api/v1';

  var registry = window.__companinWidgets = window.__companinWidgets || {};
  if (registry[instanceId]) return; // the same instance embedded twice: once is enough
  var index = Object.keys(registry).length;

  var UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  var DEFAULTS = {
    title: 'Chat with us', greeting: 'Hi! How can we help you today?', primary_color: '#2563eb',
    position: 'bottom-right', launcher_label: 'Chat', placeholder: 'Type your message…', locale: 'en'
  };
  var TEXT = {
    en: {
      open: 'Open chat', close: 'Close chat', message: 'Message', send: 'Send', messages: 'Messages',
      sources: 'Sources', typing: 'Assistant is typing', you: 'You', assistant: 'Assistant',
      busy: 'We are receiving a lot of messages right now. Please try again in {s} seconds.',
      offline: 'You seem to be offline. Your message will be sent when the connection is back.',
      failed: 'Sorry, something went wrong. Please try again.', retry: 'Retry',
      unavailable: 'This chat is not available on this site.', pending: 'The answer is taking a little longer. It will appear here shortly.',
      powered: 'Powered by Companin'
    },
    de: {
      open: 'Open chat', close: 'Close chat', message: 'Message', send: 'Senden', messages: 'Nachrichten',
      sources: 'Quellen', typing: 'Assistent schreibt', you: 'Sie', assistant: 'Assistent',
      busy: 'Gerade kommen sehr viele Nachrichten an. Bitte versuchen Sie es in {s} Sekunden erneut.',
      offline: 'Sie scheinen offline zu sein. Ihre Nachricht wird gesendet, sobald die Verbindung wieder steht.',
      failed: 'Entschuldigung, da ist etwas schiefgelaufen. Bitte versuchen Sie es erneut.', retry: 'Erneut versuchen',
      unavailable: 'Dieser Chat ist auf dieser Seite nicht verfügbar.', pending: 'Die Antwort dauert etwas länger. Sie erscheint gleich hier.',
      powered: 'Bereitgestellt von Companin'
    }
  };

  // ---- storage (localStorage may be missing or throw: private modes, sandboxed frames)
  var memory = {};
  function load(key) {
    try { return window.localStorage.getItem(key); } catch (e) { return memory[key] || null; }
  }
  function save(key, value) {
    try {
      if (value === null) window.localStorage.removeItem(key); else window.localStorage.setItem(key, value);
    } catch (e) { if (value === null) delete memory[key]; else memory[key] = value; }
  }
  var sessionKey = 'companin:v1:session:' + clientId + ':' + instanceId;
  var openKey = 'companin:v1:open:' + clientId + ':' + instanceId;

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, function (c) {
      var r = Math.random() * 16 | 0;
      return (c === 'x' ? r : (r & 3 | 8)).toString(16);
    });
  }
  function visitorId() {
    var v = load('companin:v1:visitor');
    if (!v) { v = 'visitor-' + uuid(); save('companin:v1:visitor', v); }
    return v;
  }

  // ---- API
  function ApiError(status, detail, retryAfter, code) {
    this.status = status; this.detail = detail; this.retryAfter = retryAfter; this.code = code;
  }
  function failure(res) {
    return res.json().catch(function () { return {}; }).then(function (body) {
      var code = body && body.data && body.data.code;
      throw new ApiError(res.status, (body && body.detail) || res.statusText, parseInt(res.headers.get('Retry-After') || '0', 10) || 0, code);
    });
  }

  var token = null, tokenExpires = 0, tokenPending = null, refreshTimer = null;
  function getToken(force) {
    if (!force && token && Date.now() < tokenExpires - 30000) return Promise.resolve(token);
    if (tokenPending) return tokenPending;
    // With a configuration, the token carries it: every call made with it
    // is then held to the origins that configuration allows.
    var req = { client_id: clientId };
    if (UUID.test(configId)) req.config_id = configId;
    tokenPending = fetch(apiBase + '/auth/widget-token', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(req)
    }).then(function (res) {
      if (!res.ok) return failure(res);
      return res.json();
    }).then(function (body) {
      token = body.token;
      var ttl = Math.max(60, body.expires_in || 3600) * 1000;
      tokenExpires = Date.now() + ttl;
      clearTimeout(refreshTimer);
      // Refresh a while before expiry so no call ever carries a stale token.
      refreshTimer = setTimeout(function () { getToken(true).catch(function () {}); }, Math.max(10000, ttl - 120000));
      return token;
    }).then(function (t) { tokenPending = null; return t; }, function (err) { tokenPending = null; throw err; });
    return tokenPending;
  }

  function call(method, path, body, headers, retried) {
    return getToken(false).then(function (t) {
      var h = { 'Authorization': 'Bearer ' + t };
      if (body !== undefined) h['Content-Type'] = 'application/json';
      for (var k in headers || {}) h[k] = headers[k];
      return fetch(apiBase + path, { method: method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    }).then(function (res) {
      if (res.status === 401 && !retried) {
        token = null;
        return call(method, path, body, headers, true);
      }
      return res;
    });
  }
  function callJSON(method, path, body) {
    return call(method, path, body).then(function (res) {
      if (!res.ok) return failure(res);
      return res.json();
    });
  }

  // ---- DOM
  var host = document.createElement('companin-widget');
  host.setAttribute('data-instance-id', instanceId);
  // The page may style <companin-widget> itself: the :host rule below wins
  // over its !important rules; only these variables, set here, place it.
  function placeHost(pos) {
    var side = pos === 'bottom-left' ? ['--companin-left', '--companin-right'] : ['--companin-right', '--companin-left'];
    host.style.setProperty('--companin-bottom', (20 + index * 72) + 'px', 'important');
    host.style.setProperty(side[0], '20px', 'important');
    host.style.setProperty(side[1], 'auto', 'important');
  }
  placeHost('bottom-right');
  var shadow = host.attachShadow({ mode: 'open' });

  var CSS = [
    ':host{all:initial!important;display:block!important;position:fixed!important;z-index:2147483000!important;' +
      'bottom:var(--companin-bottom,20px)!important;right:var(--companin-right,20px)!important;left:var(--companin-left,auto)!important;top:auto!important;' +
      'width:auto!important;height:auto!important;margin:0!important;padding:0!important;border:0!important;transform:none!important;' +
      'filter:none!important;opacity:1!important;visibility:visible!important;zoom:1!important;contain:none!important;clip-path:none!important;pointer-events:auto!important}',
    '.root{all:initial;display:flex;flex-direction:column;font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;font-size:14px;line-height:1.45;color:#111827;--cw-primary:#2563eb;text-align:left;direction:ltr}',
    ':where(.root *,.root *::before,.root *::after){box-sizing:border-box;margin:0;padding:0;font:inherit;color:inherit;letter-spacing:normal;text-transform:none;text-shadow:none}',
    '.launcher{display:inline-flex;align-items:center;gap:8px;height:52px;padding:0 20px 0 16px;border:0;border-radius:26px;background:var(--cw-primary);color:#fff;font-weight:600;font-size:15px;cursor:pointer;box-shadow:0 6px 20px rgba(0,0,0,.22)}',
    '.launcher svg{width:22px;height:22px;fill:currentColor}',
    '.launcher:focus-visible,.close:focus-visible,.send:focus-visible,.retry:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}',
    '.right{align-items:flex-end}.left{align-items:flex-start}',
    '.panel{position:absolute;bottom:66px;width:370px;max-width:calc(100vw - 40px);height:540px;max-height:calc(100vh - 110px);display:flex;flex-direction:column;background:#fff;border-radius:16px;box-shadow:0 12px 40px rgba(0,0,0,.25);overflow:hidden}',
    '.right .panel{right:0}.left .panel{left:0}',
    '.panel[hidden]{display:none}',
    'header{display:flex;align-items:center;justify-content:space-between;padding:14px 16px;background:var(--cw-primary);color:#fff}',
    'h2{font-size:16px;font-weight:600}',
    '.close{border:0;background:transparent;color:#fff;font-size:22px;line-height:1;width:32px;height:32px;border-radius:16px;cursor:pointer}',
    '.close:hover{background:rgba(255,255,255,.18)}',
    '.log{flex:1;overflow-y:auto;padding:16px;display:flex;flex-direction:column;gap:10px;background:#f9fafb}',
    '.msg{display:flex;flex-direction:column;max-width:85%}',
    '.msg.user{align-self:flex-end;align-items:flex-end}',
    '.msg.assistant{align-self:flex-start}',
    '.bubble{padding:9px 13px;border-radius:14px;white-space:pre-wrap;word-wrap:break-word;overflow-wrap:anywhere}',
    '.user .bubble{background:var(--cw-primary);color:#fff;border-bottom-right-radius:4px}',
    '.assistant .bubble{background:#fff;border:1px solid #e5e7eb;border-bottom-left-radius:4px}',
    '.sources{margin-top:4px;font-size:12px;color:#4b5563}',
    '.sources ul{list-style:none;display:flex;flex-wrap:wrap;gap:4px;margin-top:2px}',
    '.sources li{background:#eef2ff;border-radius:10px;padding:1px 8px}',
    '.typing .bubble{display:inline-flex;gap:4px;align-items:center;height:36px}',
    '.dot{width:7px;height:7px;border-radius:50%;background:#9ca3af;animation:cw-b 1.2s infinite ease-in-out}',
    '.dot:nth-child(2){animation-delay:.15s}.dot:nth-child(3){animation-delay:.3s}',
    '@keyframes cw-b{0%,80%,100%{transform:scale(.6);opacity:.5}40%{transform:scale(1);opacity:1}}',
    '@media (prefers-reduced-motion:reduce){.dot{animation:none}}',
    '.notice{margin:0 16px 8px;padding:8px 12px;border-radius:10px;background:#fef3c7;color:#78350f;font-size:13px}',
    '.notice[hidden]{display:none}',
    '.retry{margin-left:8px;border:0;background:transparent;text-decoration:underline;cursor:pointer;font-weight:600}',
    'form{display:flex;gap:8px;padding:12px;border-top:1px solid #e5e7eb;background:#fff}',
    'textarea{flex:1;resize:none;height:42px;max-height:120px;padding:10px 12px;border:1px solid #d1d5db;border-radius:10px;background:#fff;color:#111827}',
    'textarea:focus{outline:2px solid var(--cw-primary);outline-offset:0;border-color:transparent}',
    '.send{border:0;border-radius:10px;background:var(--cw-primary);color:#fff;width:42px;height:42px;cursor:pointer;display:inline-flex;align-items:center;justify-content:center}',
    '.send svg{width:18px;height:18px;fill:currentColor}',
    '.send:disabled{opacity:.5;cursor:default}',
    '.footer{font-size:11px;color:#9ca3af;text-align:center;padding:0 0 8px;background:#fff}',
    '.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}'
  ].join('\n');

  function el(tag, attrs, children) {
    var n = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === 'text') n.textContent = attrs[k];
      else if (k === 'class') n.className = attrs[k];
      else n.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) n.appendChild(c); });
    return n;
  }
  // Icons are built as DOM nodes, not parsed from markup, so that pages
  // enforcing Trusted Types (require-trusted-types-for 'script') allow them.
  function icon(d) {
    var ns = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    var path = document.createElementNS(ns, 'path');
    path.setAttribute('d', d);
    svg.appendChild(path);
    return svg;
  }
  var ICON_CHAT = 'M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 1-2z';
  var ICON_SEND = 'M2 21l21-9L2 3v7l15 2-15 2z';

  var panelId = 'companin-panel-' + instanceId.replace(/[^A-Za-z0-9_-]/g, '');
  var root = el('div', { class: 'root right', part: 'root' });
  var title = el('h2', { id: 'title' });
  var closeBtn = el('button', { type: 'button', class: 'close', 'aria-label': 'Close chat', text: '×' });
  var log = el('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', tabindex: '0' });
  var notice = el('div', { class: 'notice', role: 'status', hidden: '' });
  var input = el('textarea', { rows: '1', 'aria-label': 'Message', maxlength: '4000' });
  var sendBtn = el('button', { type: 'submit', class: 'send', 'aria-label': 'Send' });
  sendBtn.appendChild(icon(ICON_SEND));
  var form = el('form', {}, [input, sendBtn]);
  var footer = el('div', { class: 'footer' });
  var panel = el('section', { class: 'panel', id: panelId, role: 'dialog', 'aria-labelledby': 'title', hidden: '' },
    [el('header', {}, [title, closeBtn]), log, notice, form, footer]);
  var launcher = el('button', { type: 'button', class: 'launcher', 'aria-label': 'Open chat', 'aria-expanded': 'false', 'aria-controls': panelId });
  var launcherText = el('span');
  launcher.appendChild(icon(ICON_CHAT));
  launcher.appendChild(launcherText);
  root.appendChild(panel);
  root.appendChild(launcher);
  // A constructed stylesheet, not a <style> element: a page whose
  // Content-Security-Policy allows no inline styles (style-src without
  // 'unsafe-inline') would block the element, but not adopted sheets.
  var sheet = null;
  try {
    if ('adoptedStyleSheets' in shadow) { sheet = new CSSStyleSheet(); sheet.replaceSync(CSS); }
  } catch (e) { sheet = null; }
  if (sheet) shadow.adoptedStyleSheets = [sheet];
  else shadow.appendChild(el('style', { text: CSS }));
  shadow.appendChild(root);

  var cfg = {}, t = TEXT.en;
  function applyConfig(c) {
    cfg = {};
    for (var k in DEFAULTS) cfg[k] = (c && c[k]) || DEFAULTS[k];
    t = TEXT[String(cfg.locale).slice(0, 2).toLowerCase()] || TEXT.en;
    if (/^#[0-9a-fA-F]{3,6}$/.test(cfg.primary_color)) root.style.setProperty('--cw-primary', cfg.primary_color);
    root.className = 'root ' + (cfg.position === 'bottom-left' ? 'left' : 'right');
    placeHost(cfg.position);
    title.textContent = cfg.title;
    launcherText.textContent = cfg.launcher_label;
    input.setAttribute('placeholder', cfg.placeholder);
    log.setAttribute('aria-label', t.messages);
    footer.textContent = t.powered;
    if (greeting) greeting.querySelector('.bubble').textContent = cfg.greeting;
  }
  var greeting = null;
  applyConfig(null);
  greeting = messageNode('assistant', cfg.greeting, null);
  greeting.classList.add('greeting');
  log.appendChild(greeting);

  function mount() {
    if (document.body) document.body.appendChild(host);
    else document.addEventListener('DOMContentLoaded', function () { document.body.appendChild(host); });
  }
  mount();

  // ---- messages
  function messageNode(role, content, sources) {
    var node = el('div', { class: 'msg ' + role });
    node.appendChild(el('span', { class: 'sr', text: (role === 'user' ? t.you : t.assistant) + ': ' }));
    node.appendChild(el('div', { class: 'bubble', text: content || '' }));
    setSources(node, sources);
    return node;
  }
  function setSources(node, sources) {
    var old = node.querySelector('.sources');
    if (old) old.remove();
    if (!sources || !sources.length) return;
    var list = el('ul');
    var seen = {};
    sources.forEach(function (s) {
      var name = s.title || 'Source';
      if (seen[name]) return;
      seen[name] = true;
      list.appendChild(el('li', { text: name, title: s.snippet || name }));
    });
    var id = 'src-' + uuid();
    node.appendChild(el('div', { class: 'sources', role: 'group', 'aria-labelledby': id },
      [el('span', { id: id, text: t.sources + ':' }), list]));
  }
  function append(node) {
    log.appendChild(node);
    log.scrollTop = log.scrollHeight;
    return node;
  }
  var typing = null;
  function showTyping(on) {
    if (on && !typing) {
      typing = el('div', { class: 'msg assistant typing', role: 'status', 'aria-label': t.typing },
        [el('div', { class: 'bubble' }, [el('span', { class: 'dot' }), el('span', { class: 'dot' }), el('span', { class: 'dot' })])]);
      append(typing);
    } else if (!on && typing) {
      typing.remove();
      typing = null;
    } else if (on) {
      append(typing); // keep it last
    }
  }
  function say(text, retry) {
    notice.textContent = text || '';
    notice.hidden = !text;
    if (text && retry) {
      var b = el('button', { type: 'button', class: 'retry', text: t.retry });
      b.addEventListener('click', function () { say(''); retry(); });
      notice.appendChild(b);
    }
  }

  // ---- session
  var sessionId = null, starting = null, historyLoaded = false, disabled = false;
  function stored() {
    try {
      var s = JSON.parse(load(sessionKey) || 'null');
      if (s && s.assistant_id === assistantId && UUID.test(s.session_id)) return s.session_id;
    } catch (e) { /* a corrupt entry starts over */ }
    return null;
  }
  function ensureSession() {
    if (sessionId) return Promise.resolve(sessionId);
    if (starting) return starting;
    starting = callJSON('POST', '/sessions/', {
      assistant_id: assistantId, visitor_id: visitorId(), locale: cfg.locale,
      metadata: { source: 'companin_widget', widget_instance: instanceId, page: location.origin + location.pathname }
    }).then(function (body) {
      sessionId = body.data.id;
      save(sessionKey, JSON.stringify({ session_id: sessionId, assistant_id: assistantId }));
      starting = null;
      return sessionId;
    }, function (err) { starting = null; throw err; });
    return starting;
  }
  function loadHistory() {
    var id = stored();
    if (!id || historyLoaded) return Promise.resolve();
    return callJSON('GET', '/sessions/' + id + '/messages?limit=100').then(function (body) {
      historyLoaded = true;
      sessionId = id;
      var rendered = {};
      log.querySelectorAll('[data-id]').forEach(function (n) { rendered[n.getAttribute('data-id')] = true; });
      (body.data || []).forEach(function (m) {
        if (rendered[m.id] || m.content === null) return;
        var n = messageNode(m.role === 'user' ? 'user' : 'assistant', m.content, m.sources);
        n.setAttribute('data-id', m.id);
        log.insertBefore(n, typing);
      });
      log.scrollTop = log.scrollHeight;
    }, function (err) {
      if (err.status === 404 || err.status === 403) { save(sessionKey, null); historyLoaded = true; return; }
      throw err;
    });
  }

  // ---- sending, with the reply streamed as Server-Sent Events
  var queue = [], busy = false;
  function send(text) {
    text = text.trim();
    if (!text || disabled) return;
    var node = append(messageNode('user', text, null));
    queue.push({ text: text, node: node, key: uuid(), messageId: null });
    pump();
  }
  function pump() {
    if (busy || !queue.length) return;
    busy = true;
    sendBtn.disabled = true;
    var item = queue[0];
    say('');
    showTyping(true);
    ensureSession().then(function (sid) { return post(sid, item); }).then(function () {
      queue.shift();
      busy = false;
      showTyping(false);
      sendBtn.disabled = false;
      pump();
    }, function (err) {
      busy = false;
      showTyping(false);
      sendBtn.disabled = false;
      fail(err, function () { pump(); });
    });
  }
  function fail(err, retry) {
    if (err instanceof ApiError) {
      if (err.status === 429) {
        var s = err.retryAfter || 30;
        say(t.busy.replace('{s}', s), retry);
        setTimeout(function () { if (!busy && queue.length) { say(''); retry(); } }, s * 1000);
        return;
      }
      if (err.status === 403) { unavailable(); return; }
      if (err.status === 404 && queue.length) { save(sessionKey, null); sessionId = null; }
      say(t.failed, retry);
      return;
    }
    // A network error: wait for the connection and try again.
    say(t.offline, retry);
    waitingOnline = retry;
  }
  var waitingOnline = null;
  window.addEventListener('online', function () {
    var r = waitingOnline;
    waitingOnline = null;
    if (r) { say(''); r(); }
  });

  function post(sid, item) {
    var headers = { 'Accept': 'text/event-stream' };
    if (item.messageId) headers['Last-Event-ID'] = item.lastEventId;
    else headers['Idempotency-Key'] = item.key;
    return call('POST', '/sessions/' + sid + '/messages', item.messageId ? {} : { content: item.text, metadata: { channel: 'widget' } }, headers)
      .then(function (res) {
        if (!res.ok) return failure(res);
        var type = res.headers.get('Content-Type') || '';
        if (type.indexOf('text/event-stream') !== 0 || !res.body) {
          return res.json().then(function (body) { finishReply(item, body.data); });
        }
        return readStream(res.body, item);
      });
  }
  function readStream(body, item) {
    var reader = body.getReader(), decoder = new TextDecoder(), buf = '', reply = null, done = false;
    function handle(event, id, data) {
      if (id) item.lastEventId = id;
      var d;
      try { d = JSON.parse(data); } catch (e) { return; }
      if (event === 'message.created') {
        item.messageId = d.id;
        item.node.setAttribute('data-id', d.id);
      } else if (event === 'reply.delta') {
        if (!reply) {
          reply = messageNode('assistant', '', null);
          reply.setAttribute('aria-busy', 'true');
          log.insertBefore(reply, typing);
        }
        reply.querySelector('.bubble').textContent += d.delta || '';
        showTyping(true);
        log.scrollTop = log.scrollHeight;
      } else if (event === 'reply.completed') {
        done = true;
        finishReply(item, d, reply);
        showTyping(false); // answered: not after the stream closes, a moment later
      } else if (event === 'error') {
        done = true;
        showTyping(false);
        if (reply) reply.removeAttribute('aria-busy');
        if (d && d.code === 'reply_timeout') say(t.pending); else say(t.failed);
      }
    }
    function pumpStream() {
      return reader.read().then(function (r) {
        if (r.value) buf += decoder.decode(r.value, { stream: true });
        var cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          var block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          var event = 'message', id = '', data = [];
          block.split('\n').forEach(function (line) {
            if (line.indexOf('event:') === 0) event = line.slice(6).trim();
            else if (line.indexOf('id:') === 0) id = line.slice(3).trim();
            else if (line.indexOf('data:') === 0) data.push(line.slice(5).replace(/^ /, ''));
          });
          if (data.length) handle(event, id, data.join('\n'));
        }
        if (r.done) {
          if (!done) throw new TypeError('stream ended early'); // resumed with Last-Event-ID
          return;
        }
        return pumpStream();
      });
    }
    return pumpStream();
  }
  function finishReply(item, data, node) {
    if (!data) return;
    if (data.id) item.node.setAttribute('data-id', data.id);
    var r = data.reply;
    if (!r) {
      if (data.reply_status === 'failed') say(t.failed); else say(t.pending);
      return;
    }
    if (!node) { node = messageNode('assistant', r.content, r.sources); log.insertBefore(node, typing); }
    node.querySelector('.bubble').textContent = r.content;
    node.removeAttribute('aria-busy');
    node.setAttribute('data-id', r.id);
    setSources(node, r.sources);
    log.scrollTop = log.scrollHeight;
  }

  // ---- opening, closing, keyboard
  function unavailable() {
    disabled = true;
    input.disabled = true;
    sendBtn.disabled = true;
    say(t.unavailable);
  }
  var ready = null;
  function start() {
    if (!ready) {
      ready = loadHistory().catch(function (err) { ready = null; fail(err, start); });
    }
    return ready;
  }
  function setOpen(open, focus) {
    panel.hidden = !open;
    launcher.setAttribute('aria-expanded', String(open));
    launcher.setAttribute('aria-label', open ? t.close : t.open);
    save(openKey, open ? '1' : null);
    if (open) {
      start();
      log.scrollTop = log.scrollHeight;
      if (focus) input.focus();
    } else if (focus) {
      launcher.focus();
    }
  }
  launcher.addEventListener('click', function () { setOpen(panel.hidden, true); });
  closeBtn.addEventListener('click', function () { setOpen(false, true); });
  root.addEventListener('keydown', function (e) {
    if (e.key === 'Escape' && !panel.hidden) { e.stopPropagation(); setOpen(false, true); }
  });
  input.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit ? form.requestSubmit() : submit(e);
    }
  });
  function submit(e) {
    e.preventDefault();
    var text = input.value;
    if (!text.trim() || disabled) return;
    input.value = '';
    send(text);
    input.focus();
  }
  form.addEventListener('submit', submit);

  // ---- start: token, configuration, then history if there is a conversation
  function init() {
    return getToken(false).then(function () {
      if (!UUID.test(configId)) return null; // e.g. the placeholder YOUR_CONFIG_ID: defaults
      return callJSON('GET', '/widget-configs/' + configId).then(function (body) { return body.data; }, function (err) {
        if (err instanceof ApiError && err.status === 403) throw err;
        return null; // unknown or unreadable: defaults
      });
    }).then(function (c) {
      applyConfig(c);
      host.setAttribute('data-ready', 'true');
      if (load(openKey)) setOpen(true, false);
    }, function (err) {
      host.setAttribute('data-ready', 'true');
      if (err instanceof ApiError && (err.status === 403 || err.status === 401)) unavailable();
      else fail(err, init);
    });
  }
  var configured = init();

  registry[instanceId] = {
    version: VERSION,
    open: function () { setOpen(true, true); },
    close: function () { setOpen(false, false); },
    ready: configured
  };
})();
