// Twinkle Ticket customer pages: event page → waiting screen → slot picker →
// result, as one small single-page app on the public API (see SPEC §2, §6).
// Plain JavaScript, no build step, no third-party code: the page's CSP
// allows only scripts and connections to this origin.
'use strict';
(() => {
  const TEXT = window.TT_I18N;
  const $ = (id) => document.getElementById(id);

  // Heartbeats keep an admitted session alive; well inside any sensible
  // heartbeat timeout (the demo's is 30 s).
  const HEARTBEAT_MS = 10000;
  const QUEUE_POLL_MS = 2000;
  const SLOTS_POLL_MS = 2000;
  const VIEWS = ['loading', 'list', 'event', 'wait', 'pick', 'result'];

  // ---------------------------------------------------------------- texts

  function initialLang() {
    try {
      const saved = localStorage.getItem('tt.lang');
      if (saved === 'ko' || saved === 'en') return saved;
    } catch (_) { /* storage disabled: fall through */ }
    const prefs = navigator.languages && navigator.languages.length
      ? navigator.languages : [navigator.language || 'en'];
    for (const pref of prefs) {
      const code = String(pref).toLowerCase().slice(0, 2);
      if (code === 'ko' || code === 'en') return code;
    }
    return 'en';
  }

  let lang = initialLang();

  function t(key, params) {
    const table = TEXT[lang] || TEXT.en;
    if (params && params.n === 1 && table[`${key}One`]) key = `${key}One`;
    let text = table[key] || TEXT.en[key] || key;
    if (params) {
      text = text.replace(/\{(\w+)\}/g, (all, name) => (name in params ? String(params[name]) : all));
    }
    return text;
  }

  function locale() { return lang === 'ko' ? 'ko-KR' : 'en'; }

  function formatTime(iso) {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return '';
    return new Intl.DateTimeFormat(locale(), {
      year: 'numeric', month: 'short', day: 'numeric',
      hour: '2-digit', minute: '2-digit', timeZoneName: 'short',
    }).format(date);
  }

  function formatCountdown(ms) {
    const total = Math.max(0, Math.ceil(ms / 1000));
    const d = Math.floor(total / 86400);
    const h = Math.floor((total % 86400) / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = total % 60;
    const two = (n) => String(n).padStart(2, '0');
    const clock = `${two(h)}:${two(m)}:${two(s)}`;
    return d > 0 ? `${d}d ${clock}` : clock;
  }

  function formatEta(seconds) {
    if (seconds === null || seconds === undefined) return '—';
    if (seconds <= 5) return t('etaSoon');
    if (seconds < 60) return t('etaSec', { n: seconds });
    const minutes = Math.ceil(seconds / 60);
    if (minutes < 60) return t('etaMin', { n: minutes });
    return t('etaHour', { h: Math.floor(minutes / 60), m: minutes % 60 });
  }

  function formatNumber(n) { return new Intl.NumberFormat(locale()).format(n); }

  // ---------------------------------------------------------------- state

  const S = {
    event: null,       // event id
    info: null,        // GET /api/events/{event}
    slots: [],         // [{id,label,capacity,remaining,soldOut}] in server order
    slotsKnown: false, // remaining counts received at least once
    view: 'loading',
    queue: null,       // last queue status
    firstPosition: null,
    lastAnnounce: 0,
    token: null,       // admission token
    booking: null,     // {slot, key, requestId, status, error}
    result: null,      // {kind, booking}
    eventNote: null,   // [key, params] under the Book button
    entering: false,
    conn: { wait: null, pick: null },
    hbTimer: null,
    bookingPollTimer: null,
    clockTimer: null,
  };

  const slotById = (id) => S.slots.find((s) => s.id === id);
  const isSoldOut = (s) => Boolean(s.soldOut) || (typeof s.remaining === 'number' && s.remaining <= 0);
  const bookingPending = () => Boolean(S.booking && S.booking.status === 'pending');
  const eventPath = () => `/api/events/${encodeURIComponent(S.event)}`;

  // ------------------------------------------------------------- helpers

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  // Exponential backoff with jitter, capped at 15 s.
  const backoff = (attempt) => Math.min(15000, 500 * 2 ** Math.min(attempt, 10)) * (0.5 + Math.random() / 2);

  function randomKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  async function api(method, path, opts = {}) {
    const headers = { Accept: 'application/json', ...(opts.headers || {}) };
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), opts.timeoutMs || 10000);
    try {
      const res = await fetch(path, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        credentials: 'same-origin',
        cache: 'no-store',
        signal: abort.signal,
      });
      let data = null;
      if ((res.headers.get('content-type') || '').includes('json')) {
        try { data = await res.json(); } catch (_) { data = null; }
      }
      const retry = Number(res.headers.get('retry-after'));
      return {
        status: res.status,
        ok: res.ok,
        data,
        code: data && data.code,
        retryAfter: Number.isFinite(retry) && retry > 0 ? retry : null,
      };
    } catch (_) {
      return { status: 0, ok: false, data: null, code: null, retryAfter: null, network: true };
    } finally {
      clearTimeout(timer);
    }
  }

  const storageKey = () => `tt.booking.${S.event}`;
  function saveBooking() {
    try {
      if (S.booking) sessionStorage.setItem(storageKey(), JSON.stringify(S.booking));
      else sessionStorage.removeItem(storageKey());
    } catch (_) { /* private mode: resuming after reload is best effort */ }
  }
  function loadBooking() {
    try {
      const raw = sessionStorage.getItem(storageKey());
      const b = raw && JSON.parse(raw);
      return b && typeof b.slot === 'string' && typeof b.key === 'string' ? b : null;
    } catch (_) { return null; }
  }

  // Whether this browser ever entered this event's line. The ticket itself is
  // an HttpOnly cookie; the mark spares fresh visitors (nearly everyone in a
  // rush) a status request that could only answer 401.
  const enteredKey = () => `tt.entered.${S.event}`;
  function markEntered(entered) {
    try {
      if (entered) localStorage.setItem(enteredKey(), '1');
      else localStorage.removeItem(enteredKey());
    } catch (_) { /* without storage, Book re-enters with the same ticket */ }
  }
  function wasEntered() {
    try { return localStorage.getItem(enteredKey()) === '1'; } catch (_) { return false; }
  }

  // -------------------------------------------------------- announcements

  function announce(message) {
    const region = $('announce');
    region.textContent = '';
    // A fresh text node after a tick, so the same message is re-announced.
    setTimeout(() => { region.textContent = message; }, 50);
  }

  function alertMessage(message) {
    const el = $('alert');
    el.textContent = message || '';
    el.hidden = !message;
  }

  // ---------------------------------------------------------- live feeds

  // A WebSocket that reconnects by itself (quickly on 1012 "service
  // restart", with backoff otherwise) and falls back to HTTP polling when
  // sockets cannot be opened at all (no WebSocket, a proxy refusing the
  // upgrade); it tries the socket again now and then while polling.
  class LiveFeed {
    constructor(opts) {
      this.opts = opts;
      this.stopped = true;
      this.sock = null;
      this.failures = 0;   // consecutive sockets that never opened
      this.attempt = 0;    // reconnect attempts since the last open
      this.polling = false;
      this.pollErrors = 0;
      this.wsTimer = null;
      this.pollTimer = null;
    }

    start() {
      if (!this.stopped) return;
      this.stopped = false;
      this.connect();
    }

    stop() {
      this.stopped = true;
      this.stopPolling();
      clearTimeout(this.wsTimer);
      const sock = this.sock;
      this.sock = null;
      if (sock) {
        sock.onopen = sock.onmessage = sock.onclose = sock.onerror = null;
        try { sock.close(1000); } catch (_) { /* already closing */ }
      }
    }

    get live() { return Boolean(this.sock) && this.sock.readyState === WebSocket.OPEN; }

    send(message) {
      if (!this.live) return false;
      this.sock.send(JSON.stringify(message));
      return true;
    }

    setConn(state) { this.opts.onConn(state); }

    connect() {
      clearTimeout(this.wsTimer);
      this.wsTimer = null;
      if (this.stopped || this.sock) return;
      if (typeof WebSocket !== 'function') { this.startPolling(); return; }
      let sock;
      try {
        const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
        sock = new WebSocket(scheme + location.host + this.opts.ws);
      } catch (_) {
        this.failed(false, 0);
        return;
      }
      this.sock = sock;
      let opened = false;
      sock.onopen = () => {
        opened = true;
        this.failures = 0;
        this.attempt = 0;
        this.stopPolling();
        this.setConn('live');
        if (this.opts.onOpen) this.opts.onOpen();
      };
      sock.onmessage = (ev) => {
        let message;
        try { message = JSON.parse(ev.data); } catch (_) { return; }
        this.opts.onMessage(message);
      };
      sock.onclose = (ev) => {
        if (this.sock !== sock) return;
        this.sock = null;
        if (!this.stopped) this.failed(opened, ev.code);
      };
    }

    failed(opened, code) {
      if (!opened) this.failures += 1;
      if (this.failures >= 3) {
        // Sockets do not get through here: poll, and retry the socket later.
        this.startPolling();
        this.schedule(30000);
        return;
      }
      this.setConn(navigator.onLine === false ? 'offline' : 'reconnecting');
      if (code === 1012) {
        // The server is restarting and our place is kept: come back fast,
        // jittered so one pod's clients do not all return at once.
        this.schedule(200 + Math.random() * 800);
      } else {
        this.pollOnce(); // keep the screen fresh while reconnecting
        this.schedule(backoff(this.attempt));
        this.attempt += 1;
      }
    }

    schedule(ms) {
      clearTimeout(this.wsTimer);
      this.wsTimer = setTimeout(() => this.connect(), ms);
    }

    // The network is back or the tab is visible again: reconnect now.
    wake() {
      if (this.stopped || this.sock) return;
      this.attempt = 0;
      this.schedule(0);
    }

    startPolling() {
      if (this.polling) return;
      this.polling = true;
      this.setConn('polling');
      this.pollLoop();
    }

    stopPolling() {
      this.polling = false;
      clearTimeout(this.pollTimer);
    }

    async pollLoop() {
      if (!this.polling || this.stopped) return;
      const wait = await this.pollOnce();
      if (!this.polling || this.stopped) return;
      clearTimeout(this.pollTimer);
      this.pollTimer = setTimeout(() => this.pollLoop(), wait);
    }

    // One poll; answers how long to wait before the next one.
    async pollOnce() {
      const res = await this.opts.poll();
      if (this.stopped) return this.opts.pollMs;
      if (res.message) {
        this.pollErrors = 0;
        this.opts.onMessage(res.message);
      }
      if (res.retryAfter) return res.retryAfter * 1000;
      if (res.error) {
        this.pollErrors += 1;
        return Math.max(this.opts.pollMs, backoff(this.pollErrors));
      }
      return this.opts.pollMs;
    }
  }

  function connText(state) {
    return {
      live: t('connLive'),
      reconnecting: t('connReconnecting'),
      polling: t('connPolling'),
      offline: t('connOffline'),
    }[state] || '';
  }

  const queueFeed = new LiveFeed({
    ws: '',
    pollMs: QUEUE_POLL_MS,
    poll: async () => {
      const r = await api('GET', `${eventPath()}/queue/status`);
      if (r.ok && r.data) return { message: r.data };
      if (r.status === 401) { ticketLost(); return {}; }
      return { error: true, retryAfter: r.retryAfter };
    },
    onMessage: (m) => onQueueStatus(m),
    onConn: (state) => { S.conn.wait = state; renderConn(); },
  });

  const slotsFeed = new LiveFeed({
    ws: '',
    pollMs: SLOTS_POLL_MS,
    poll: async () => {
      const r = await api('GET', `${eventPath()}/slots`);
      if (r.ok && r.data && Array.isArray(r.data.slots)) {
        return { message: { type: 'slots', slots: r.data.slots } };
      }
      return { error: true, retryAfter: r.retryAfter };
    },
    onMessage: (m) => onSlotsMessage(m),
    onOpen: () => {
      // Re-subscribe to a pending booking after every (re)connect.
      if (bookingPending() && S.booking.requestId) slotsFeed.send({ watch: S.booking.requestId });
    },
    onConn: (state) => { S.conn.pick = state; renderConn(); },
  });

  window.addEventListener('online', () => { queueFeed.wake(); slotsFeed.wake(); });
  window.addEventListener('offline', () => {
    if (!queueFeed.stopped && !queueFeed.live) { S.conn.wait = 'offline'; }
    if (!slotsFeed.stopped && !slotsFeed.live) { S.conn.pick = 'offline'; }
    renderConn();
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') { queueFeed.wake(); slotsFeed.wake(); }
  });

  // ----------------------------------------------------------------- views

  function show(view, opts = {}) {
    const changed = S.view !== view;
    S.view = view;
    document.body.dataset.view = view;
    for (const name of VIEWS) $(`view-${name}`).hidden = name !== view;
    if (changed) alertMessage(opts.alert || null);
    else if (opts.alert) alertMessage(opts.alert);
    clearInterval(S.clockTimer);
    S.clockTimer = null;
    if (view === 'event' && S.info && Date.parse(S.info.opensAt) > Date.now()) {
      S.clockTimer = setInterval(renderEvent, 1000);
    }
    render();
    // Move focus to the new view's heading so screen readers read it.
    if (changed && opts.focus !== false) {
      const heading = document.querySelector(`#view-${view} h1`);
      if (heading) heading.focus({ preventScroll: false });
    }
  }

  function render() {
    switch (S.view) {
      case 'list': renderList(); break;
      case 'event': renderEvent(); break;
      case 'wait': renderWait(); break;
      case 'pick': renderPick(); break;
      case 'result': renderResult(); break;
      default: break;
    }
    const heading = document.querySelector(`#view-${S.view} h1`);
    const site = S.info ? S.info.title : 'Twinkle Ticket';
    const text = heading ? heading.textContent : '';
    document.title = text && text !== site ? `${text} · ${site}` : `${site} · Twinkle Ticket`;
    renderConn();
  }

  function applyLang() {
    document.documentElement.lang = lang;
    for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    const toggle = $('lang-toggle');
    toggle.textContent = t('toggle');
    toggle.lang = t('toggleLang');
    toggle.setAttribute('aria-label', t('toggleLabel'));
    render();
  }

  function renderConn() {
    $('wait-conn').textContent = connText(S.conn.wait);
    $('wait-conn').dataset.conn = S.conn.wait || '';
    $('pick-conn').textContent = connText(S.conn.pick);
    $('pick-conn').dataset.conn = S.conn.pick || '';
  }

  // ---- event list (`/` when several events are served)

  S.listed = [];
  function renderList() {
    const list = $('event-list');
    list.replaceChildren();
    for (const info of S.listed) {
      const li = document.createElement('li');
      li.className = 'card';
      const a = document.createElement('a');
      a.href = `/events/${encodeURIComponent(info.id)}`;
      a.textContent = info.title;
      const p = document.createElement('p');
      p.className = 'muted';
      p.textContent = `${formatTime(info.opensAt)} – ${formatTime(info.closesAt)}`;
      li.append(a, p);
      list.append(li);
    }
    $('list-empty').hidden = S.listed.length > 0;
  }

  // ---- event page

  function renderEvent() {
    const info = S.info;
    if (!info) {
      $('event-title').textContent = t('unknownEvent');
      for (const id of ['event-state', 'book']) $(id).hidden = true;
      document.querySelector('#view-event .facts').hidden = true;
      document.querySelector('#view-event h2').hidden = true;
      return;
    }
    $('event-title').textContent = info.title;
    const now = Date.now();
    const opens = Date.parse(info.opensAt);
    const closes = Date.parse(info.closesAt);
    const state = $('event-state');
    let closed = false;
    if (now >= closes) {
      closed = true;
      state.textContent = t('closed');
      state.dataset.state = 'closed';
    } else if (now < opens) {
      state.textContent = t('opensIn', { t: formatCountdown(opens - now) });
      state.dataset.state = 'soon';
    } else {
      state.textContent = t('openNow');
      state.dataset.state = 'open';
    }
    $('event-opens').textContent = formatTime(info.opensAt);
    $('event-closes').textContent = formatTime(info.closesAt);
    $('event-limit').textContent = t('limit', { n: info.perCustomerLimit });

    const list = $('event-slots');
    list.replaceChildren();
    for (const slot of S.slots) {
      const li = document.createElement('li');
      const label = document.createElement('span');
      label.className = 'slot-label';
      label.textContent = slot.label;
      const seats = document.createElement('span');
      seats.className = 'slot-state';
      if (S.slotsKnown && isSoldOut(slot)) {
        seats.textContent = t('soldOut');
        li.className = 'sold';
      } else if (S.slotsKnown && typeof slot.remaining === 'number') {
        seats.textContent = t('leftOf', { n: formatNumber(slot.remaining), c: formatNumber(slot.capacity) });
      } else {
        seats.textContent = t('seats', { n: formatNumber(slot.capacity) });
      }
      li.append(label, seats);
      list.append(li);
    }

    const book = $('book');
    book.hidden = closed;
    book.disabled = S.entering || Boolean(S.eventNote && S.eventNote[0] === 'endedDetail');
    $('book-note').textContent = S.eventNote ? t(S.eventNote[0], S.eventNote[1]) : '';
  }

  function setEventNote(key, params) {
    S.eventNote = key ? [key, params] : null;
    if (S.view === 'event') renderEvent();
  }

  // ---- waiting screen

  function renderWait() {
    $('wait-event').textContent = S.info ? S.info.title : '';
    const q = S.queue;
    const position = q && typeof q.position === 'number' ? q.position : null;
    $('wait-position').textContent = position === null ? t('numbering') : formatNumber(position);
    $('wait-position').dataset.assigned = position === null ? 'false' : 'true';
    $('wait-ahead').textContent = q && typeof q.ahead === 'number' ? formatNumber(q.ahead) : '—';
    $('wait-eta').textContent = q && q.etaSeconds !== null && q.etaSeconds !== undefined ? formatEta(q.etaSeconds) : '—';
    const progress = $('wait-progress');
    if (position !== null && S.firstPosition && S.firstPosition > 1) {
      progress.value = Math.round(((S.firstPosition - position) / (S.firstPosition - 1)) * 100);
    } else {
      progress.value = 0;
    }
  }

  function startWaiting() {
    S.queue = null;
    S.firstPosition = null;
    S.lastAnnounce = 0;
    show('wait');
    announce(t('announceNumbering'));
    queueFeed.start();
  }

  function onQueueStatus(status) {
    if (!status || typeof status !== 'object' || S.view !== 'wait') return;
    if (status.admitted && status.token) {
      S.token = status.token;
      queueFeed.stop();
      startPicking();
      announce(t('admitted'));
      return;
    }
    if (status.sessionEnded) {
      queueFeed.stop();
      showResult('ended');
      return;
    }
    S.queue = status;
    if (typeof status.position === 'number') {
      if (S.firstPosition === null) S.firstPosition = status.position;
      // Announce the first number, then at most every 30 s: the visible
      // numbers change every tick, which would drown a screen reader.
      const now = Date.now();
      if (now - S.lastAnnounce > 30000) {
        S.lastAnnounce = now;
        announce(t('announcePos', { p: formatNumber(status.position), eta: formatEta(status.etaSeconds) }));
      }
    }
    renderWait();
  }

  // The ticket cookie is missing, forged or expired.
  function ticketLost() {
    markEntered(false);
    queueFeed.stop();
    slotsFeed.stop();
    stopHeartbeat();
    S.entering = false;
    setEventNote(null);
    show('event', { alert: t('ticketInvalid') });
  }

  async function enterQueue() {
    if (S.entering) return;
    S.entering = true;
    setEventNote('joining');
    let attempt = 0;
    for (;;) {
      const r = await api('POST', `${eventPath()}/queue`, { body: { lang } });
      if (r.status === 200 || r.status === 201) {
        markEntered(true);
        S.entering = false;
        setEventNote(null);
        startWaiting();
        return;
      }
      if (r.status === 429 || r.status === 503 || r.network) {
        // A rush: wait as told (or back off) and try again by ourselves.
        const seconds = r.retryAfter || Math.ceil(backoff(attempt) / 1000);
        attempt += 1;
        setEventNote(r.network ? 'retrying' : 'busyRetry', { s: seconds });
        await sleep(seconds * 1000);
        continue;
      }
      S.entering = false;
      if (r.code === 'queue_not_open') setEventNote('notOpen', { t: formatTime(S.info.opensAt) });
      else if (r.code === 'sale_closed') setEventNote('saleClosed');
      else setEventNote('errorGeneric');
      return;
    }
  }

  // ---- slot picker

  function startPicking() {
    show('pick');
    slotsFeed.start();
    startHeartbeat();
  }

  function onSlotsMessage(message) {
    if (!message || typeof message !== 'object') return;
    if (message.type === 'slots' && Array.isArray(message.slots)) updateSlots(message.slots);
    else if (message.type === 'booking' && message.booking) onBookingOutcome(message.booking);
  }

  function updateSlots(list) {
    const before = new Map(S.slots.map((s) => [s.id, s]));
    const fresh = [];
    for (const s of list) {
      if (!s || typeof s.id !== 'string') continue;
      const slot = {
        id: s.id,
        label: typeof s.label === 'string' ? s.label : s.id,
        capacity: s.capacity,
        remaining: s.remaining,
        soldOut: Boolean(s.soldOut),
      };
      const old = before.get(s.id);
      if (S.slotsKnown && old && !isSoldOut(old) && isSoldOut(slot) && S.view === 'pick') {
        announce(t('slotSoldAnnounce', { label: slot.label }));
      }
      fresh.push(slot);
    }
    S.slots = fresh;
    S.slotsKnown = true;
    if (S.view === 'pick') renderPick();
    if (S.view === 'event') renderEvent();
  }

  function slotStateText(slot) {
    if (S.slotsKnown && isSoldOut(slot)) return t('soldOut');
    if (S.slotsKnown && typeof slot.remaining === 'number') return t('left', { n: formatNumber(slot.remaining) });
    return t('seats', { n: formatNumber(slot.capacity) });
  }

  // Updates the buttons in place (focus stays where it is).
  function renderPick() {
    $('pick-event').textContent = S.info ? S.info.title : '';
    const list = $('slot-list');
    const existing = new Map(Array.from(list.children, (li) => [li.dataset.slot, li]));
    const busy = bookingPending();
    list.setAttribute('aria-busy', busy ? 'true' : 'false');
    S.slots.forEach((slot, index) => {
      let li = existing.get(slot.id);
      if (!li) {
        li = document.createElement('li');
        li.dataset.slot = slot.id;
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'slot';
        button.dataset.slot = slot.id;
        const label = document.createElement('span');
        label.className = 'slot-label';
        const state = document.createElement('span');
        state.className = 'slot-state';
        const meter = document.createElement('meter');
        meter.setAttribute('aria-hidden', 'true');
        meter.min = 0;
        button.append(label, state, meter);
        button.addEventListener('click', () => pickSlot(slot.id));
        li.append(button);
      }
      existing.delete(slot.id);
      if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null);
      const button = li.firstElementChild;
      const sold = S.slotsKnown && isSoldOut(slot);
      button.querySelector('.slot-label').textContent = slot.label;
      button.querySelector('.slot-state').textContent = slotStateText(slot);
      const meter = button.querySelector('meter');
      meter.max = Math.max(1, slot.capacity || 1);
      meter.low = Math.max(1, Math.ceil(meter.max * 0.2));
      meter.value = typeof slot.remaining === 'number' ? slot.remaining : meter.max;
      button.disabled = sold || busy || !S.token;
      li.classList.toggle('sold', sold);
    });
    for (const li of existing.values()) li.remove();
  }

  // ---- session heartbeat and token

  function startHeartbeat() {
    if (S.hbTimer) return;
    heartbeat();
    S.hbTimer = setInterval(heartbeat, HEARTBEAT_MS);
  }

  function stopHeartbeat() {
    clearInterval(S.hbTimer);
    S.hbTimer = null;
  }

  async function heartbeat() {
    if (!S.token) return;
    const r = await api('POST', `${eventPath()}/session/heartbeat`, { token: S.token });
    if (r.status === 204 || !S.hbTimer) return;
    if (r.status === 410) {
      // A confirmed booking ends the session: wait for its outcome.
      if (!bookingPending()) sessionEnded();
      return;
    }
    if (r.status === 401) {
      const fresh = await refreshToken();
      if (fresh === 'ended' && !bookingPending()) sessionEnded();
      if (fresh === 'lost') ticketLost();
    }
    // Network trouble or 503: the next beat retries.
  }

  // A fresh admission token from the status endpoint (tokens are short-lived).
  async function refreshToken() {
    const r = await api('GET', `${eventPath()}/queue/status`);
    if (r.ok && r.data) {
      if (r.data.admitted && r.data.token) {
        S.token = r.data.token;
        return 'ok';
      }
      if (r.data.sessionEnded) return 'ended';
      return 'waiting';
    }
    if (r.status === 401) return 'lost';
    return 'error';
  }

  function sessionEnded() {
    stopHeartbeat();
    slotsFeed.stop();
    showResult('ended');
  }

  async function leave() {
    if (!S.token || !window.confirm(t('leaveConfirm'))) return;
    let r = await api('DELETE', `${eventPath()}/session`, { token: S.token });
    if (r.status === 401 && (await refreshToken()) === 'ok') {
      r = await api('DELETE', `${eventPath()}/session`, { token: S.token });
    }
    if (r.status === 204 || r.status === 401) {
      S.token = null;
      sessionEnded();
    } else {
      alertMessage(t('errorGeneric'));
    }
  }

  // ---- booking

  function pickSlot(slotId) {
    if (bookingPending() || !S.token || !slotById(slotId)) return;
    // One idempotency key per click, reused for every retry of that click.
    S.booking = { slot: slotId, key: randomKey(), requestId: null, status: 'pending' };
    saveBooking();
    showResult('pending');
    submitBooking();
  }

  async function submitBooking() {
    const b = S.booking;
    let attempt = 0;
    let refreshed = false;
    while (S.booking === b && !b.requestId) {
      const r = await api('POST', `${eventPath()}/bookings`, {
        token: S.token,
        body: { slot: b.slot },
        headers: { 'Idempotency-Key': b.key },
      });
      if (S.booking !== b) return;
      if (r.ok && r.data && typeof r.data.requestId === 'string') {
        b.requestId = r.data.requestId;
        saveBooking();
        if (r.data.status && r.data.status !== 'pending') onBookingOutcome(r.data);
        else watchBooking();
        return;
      }
      if (r.status === 401 && !refreshed) {
        refreshed = true;
        const fresh = await refreshToken();
        if (fresh === 'ok') continue;
        if (fresh === 'ended') { S.booking = null; saveBooking(); sessionEnded(); return; }
      }
      if (r.status === 410) {
        // The admitted session ended (expired, abandoned or left).
        S.booking = null;
        saveBooking();
        sessionEnded();
        return;
      }
      if (r.status === 409 && r.code === 'idempotency_conflict' && !b.rekeyed) {
        // Cannot happen with a fresh key per click; start over with another.
        b.rekeyed = true;
        b.key = randomKey();
        saveBooking();
        continue;
      }
      if (r.status === 409) {
        S.booking = null;
        saveBooking();
        stopHeartbeat();
        slotsFeed.stop();
        showResult('closed');
        return;
      }
      if (r.status === 404) {
        S.booking = null;
        saveBooking();
        show('pick', { alert: t('unknownSlot') });
        return;
      }
      if ((r.network || r.status === 429 || r.status >= 500) && attempt < 6) {
        await sleep(r.retryAfter ? r.retryAfter * 1000 : backoff(attempt));
        attempt += 1;
        continue;
      }
      // Give up for now; "Try again" resends with the same key.
      b.error = true;
      showResult('error');
      return;
    }
  }

  function retryBooking() {
    const b = S.booking;
    if (!b) { show('pick'); return; }
    b.error = false;
    showResult('pending');
    if (b.requestId) watchBooking();
    else submitBooking();
  }

  function watchBooking() {
    slotsFeed.send({ watch: S.booking.requestId });
    scheduleBookingPoll(1500);
  }

  function scheduleBookingPoll(ms) {
    clearTimeout(S.bookingPollTimer);
    S.bookingPollTimer = setTimeout(pollBooking, ms);
  }

  // The safety net under the WebSocket's booking push (and the only source
  // when sockets are down). The ticket cookie authenticates it.
  async function pollBooking() {
    const b = S.booking;
    if (!b || !b.requestId || b.status !== 'pending') return;
    const r = await api('GET', `${eventPath()}/bookings/${encodeURIComponent(b.requestId)}`);
    if (S.booking !== b) return;
    if (r.ok && r.data && r.data.status && r.data.status !== 'pending') {
      onBookingOutcome(r.data);
      return;
    }
    scheduleBookingPoll(slotsFeed.live ? 4000 : 1500);
  }

  function onBookingOutcome(outcome) {
    const b = S.booking;
    if (!b || !outcome || outcome.status === 'pending') return;
    if (b.requestId && outcome.requestId && outcome.requestId !== b.requestId) return;
    clearTimeout(S.bookingPollTimer);
    b.status = outcome.status;
    if (outcome.requestId) b.requestId = outcome.requestId;
    if (b.status === 'sold_out') {
      // The session stays alive: mark the slot and let them pick another.
      const slot = slotById(b.slot);
      if (slot) { slot.remaining = 0; slot.soldOut = true; }
      S.booking = null;
      saveBooking();
      showResult('sold_out', b);
      return;
    }
    // confirmed / already_booked: this turn is over.
    saveBooking();
    stopHeartbeat();
    slotsFeed.stop();
    showResult(b.status, b);
    if (S.token && (!S.info || S.info.perCustomerLimit <= 1)) {
      // Nothing more to book: hand the place to the next in line now rather
      // than at expiry (a no-op if booking already ended the session).
      api('DELETE', `${eventPath()}/session`, { token: S.token });
    }
  }

  // ---- result page

  function showResult(kind, booking) {
    S.result = { kind, booking: booking || S.booking };
    renderResult();
    show('result');
    announce($('result-title').textContent);
  }

  function renderResult() {
    const r = S.result;
    if (!r) return;
    const slot = r.booking && slotById(r.booking.slot);
    const label = slot ? slot.label : (r.booking && r.booking.slot) || '';
    const n = S.info ? S.info.perCustomerLimit : 1;
    const texts = {
      pending: ['pendingTitle', 'pendingDetail'],
      confirmed: ['confirmedTitle', 'confirmedDetail'],
      sold_out: ['soldOutTitle', 'soldOutDetail'],
      already_booked: ['alreadyTitle', 'alreadyDetail'],
      ended: ['endedTitle', 'endedDetail'],
      closed: ['closedTitle', 'closedDetail'],
      error: ['errorTitle', 'errorDetail'],
    }[r.kind];
    $('result-event').textContent = S.info ? S.info.title : '';
    $('result-title').textContent = t(texts[0]);
    $('result-detail').textContent = t(texts[1], { label, n });
    const view = $('view-result');
    view.dataset.kind = r.kind;
    view.setAttribute('aria-busy', r.kind === 'pending' ? 'true' : 'false');
    $('result-icon').textContent = { confirmed: '✓', sold_out: '!', already_booked: 'i', pending: '' }[r.kind] || '·';
    const ref = $('result-ref');
    ref.hidden = !(r.kind === 'confirmed' && r.booking && r.booking.requestId);
    ref.textContent = ref.hidden ? '' : t('reference', { id: r.booking.requestId });
    $('result-again').hidden = r.kind !== 'sold_out';
    $('result-retry').hidden = r.kind !== 'error';
    $('result-back').hidden = r.kind === 'pending' || r.kind === 'sold_out' || r.kind === 'error';
    $('result-back').href = `/events/${encodeURIComponent(S.event || '')}`;
  }

  // ------------------------------------------------------------------ boot

  // Picks up where this customer left off (reload, new tab): the ticket is
  // an HttpOnly cookie, so ask the server what it says about it.
  async function resume() {
    if (!wasEntered()) return false;
    const r = await api('GET', `${eventPath()}/queue/status`);
    if (r.status === 401) markEntered(false); // the ticket expired or is gone
    if (!r.ok || !r.data) return false;
    const status = r.data;
    const saved = loadBooking();
    if (saved && (saved.status === 'confirmed' || saved.status === 'already_booked')) {
      S.booking = saved;
      showResult(saved.status, saved);
      return true;
    }
    if (status.admitted && status.token) {
      S.token = status.token;
      if (saved && saved.status === 'pending') {
        S.booking = saved;
        slotsFeed.start();
        startHeartbeat();
        showResult('pending');
        if (saved.requestId) watchBooking();
        else submitBooking(); // same idempotency key: never two bookings
      } else {
        startPicking();
      }
      return true;
    }
    if (status.sessionEnded) {
      if (saved && saved.status === 'pending' && saved.requestId) {
        // The session ended while deciding (a confirmation ends it).
        S.booking = saved;
        showResult('pending');
        scheduleBookingPoll(0);
        return true;
      }
      setEventNote('endedDetail');
      return false;
    }
    startWaiting();
    return true;
  }

  async function loadEvent(id) {
    for (let attempt = 0; ; attempt += 1) {
      const r = await api('GET', `/api/events/${encodeURIComponent(id)}`);
      if (r.ok && r.data) return r.data;
      if (r.status === 404 || attempt >= 4) return null;
      await sleep(r.retryAfter ? r.retryAfter * 1000 : backoff(attempt));
    }
  }

  async function boot() {
    $('lang-toggle').addEventListener('click', () => {
      lang = lang === 'ko' ? 'en' : 'ko';
      try { localStorage.setItem('tt.lang', lang); } catch (_) { /* not kept */ }
      applyLang();
    });
    $('book').addEventListener('click', enterQueue);
    $('leave').addEventListener('click', leave);
    $('result-again').addEventListener('click', () => show('pick'));
    $('result-retry').addEventListener('click', retryBooking);
    applyLang();

    const match = location.pathname.match(/^\/events\/([^/]+)\/?$/);
    if (match) {
      S.event = decodeURIComponent(match[1]);
    } else {
      const meta = document.querySelector('meta[name="tt-events"]');
      const ids = (meta ? meta.content : '').split(',').filter((id) => /^[a-z0-9-]+$/.test(id));
      if (ids.length !== 1) {
        S.listed = (await Promise.all(ids.map(loadEvent))).filter(Boolean);
        show('list', { focus: false });
        return;
      }
      S.event = ids[0];
    }
    const path = `/events/${encodeURIComponent(S.event)}`;
    queueFeed.opts.ws = `/ws${path}/queue`;
    slotsFeed.opts.ws = `/ws${path}/slots`;

    S.info = await loadEvent(S.event);
    if (!S.info) {
      show('event', { focus: false });
      return;
    }
    S.slots = S.info.slots.map((s) => ({ ...s, remaining: null, soldOut: false }));
    // Remaining seats for the event page (the booking API may be absent).
    api('GET', `${eventPath()}/slots`).then((r) => {
      if (r.ok && r.data && Array.isArray(r.data.slots) && !S.slotsKnown) updateSlots(r.data.slots);
    });
    if (!(await resume())) show('event', { focus: false });
  }

  boot();
})();
