// hamq's web console: one page that reads and drives the admin API
// (/api/...). Each view is drawn once when it is opened and its data
// refreshed every few seconds; nothing reloads the page.
'use strict';

const POLL_MS = 2000;

// ---- helpers -------------------------------------------------------------

// h builds an element: h('td', {class: 'num'}, 'text', child, ...).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

async function api(method, path, body, headers) {
  const r = await fetch(path, {method, body, headers: Object.assign({Accept: 'application/json'}, headers || {}), credentials: 'same-origin', cache: 'no-store'});
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = {error: text}; }
  if (!r.ok) {
    const err = new Error((data && data.error) || (r.status + ' ' + r.statusText));
    err.status = r.status;
    err.data = data;
    throw err;
  }
  return data;
}

const get = (path) => api('GET', path);
const enc = encodeURIComponent;

function num(n) {
  if (n === undefined || n === null) return '–';
  return Number(n).toLocaleString('en-US');
}

function bytes(n) {
  if (n === undefined || n === null) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v : v.toFixed(1)) + ' ' + units[i];
}

function duration(s) {
  s = Math.max(0, Math.floor(s));
  const d = Math.floor(s / 86400), hr = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), sec = s % 60;
  if (d) return d + 'd ' + hr + 'h';
  if (hr) return hr + 'h ' + m + 'm';
  if (m) return m + 'm ' + sec + 's';
  return sec + 's';
}

function ago(iso) {
  if (!iso) return '–';
  return duration((Date.now() - Date.parse(iso)) / 1000) + ' ago';
}

function flash(text, ok) {
  const f = document.getElementById('flash');
  f.hidden = false;
  f.className = 'flash ' + (ok ? 'ok' : 'error');
  f.textContent = text;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => { f.hidden = true; }, 8000);
}

// act runs an operation, says how it went and refreshes the view.
async function act(what, fn) {
  try {
    const res = await fn();
    flash(what + (typeof res === 'string' ? ': ' + res : ''), true);
  } catch (e) {
    flash(what + ' failed: ' + e.message, false);
  }
  refresh();
}

function table(headers, rows, empty) {
  if (!rows.length) return h('p', {class: 'muted'}, empty || 'None.');
  return h('div', {class: 'table-wrap'}, h('table', {},
    h('thead', {}, h('tr', {}, headers.map(c => h('th', {class: c.num ? 'num' : ''}, c.label || c)))),
    h('tbody', {}, rows)));
}

function card(label, value, id) {
  return h('div', {class: 'card', id: id}, h('div', {class: 'label'}, label), h('div', {class: 'value'}, value));
}

function replace(el, ...children) {
  el.replaceChildren(...children.flat().filter(c => c !== null && c !== undefined && c !== false));
}

// ---- state: the node, refreshed on every poll ------------------------------

let broker = null; // /api/broker

function showNode() {
  if (!broker) return;
  document.getElementById('node-name').textContent = broker.name + (broker.id ? ' · ' + broker.id : '');
  const role = document.getElementById('node-role');
  role.textContent = broker.role;
  role.className = 'badge ' + broker.role;
  const banner = document.getElementById('banner');
  if (!broker.serving) {
    banner.hidden = false;
    const what = broker.role === 'standalone' ? 'This broker serves no clients: ' + broker.health + '.' :
      'This node is a ' + broker.role + ': it serves no clients and holds no destinations of its own.';
    const link = broker.masterAdmin ? h('span', {}, ' The master is ', h('a', {href: broker.masterAdmin + '/admin/', id: 'master-link'}, broker.masterAdmin), ': its console manages the cluster.') :
      (broker.role !== 'standalone' ? ' No master is elected at the moment.' : '');
    replace(banner, what, link);
  } else {
    banner.hidden = true;
  }
  const a = broker.auth || {};
  document.getElementById('user').textContent = a.user ? '· logged in as ' + a.user : (a.enabled ? '' : '· authentication is off');
}

// notServing draws the banner's words in a view that needs a serving node.
function notServing(el) {
  replace(el, h('p', {class: 'muted'}, 'Destinations live on the node that serves clients.',
    broker && broker.masterAdmin ? [' Open ', h('a', {href: broker.masterAdmin + '/admin/' + location.hash}, 'this page on the master'), '.'] : ''));
}

// ---- views -----------------------------------------------------------------

const views = {};

views.overview = {
  title: 'Overview',
  draw(main) {
    this.cards = h('div', {class: 'cards', id: 'overview-cards'});
    this.conns = h('div');
    main.append(h('h1', {}, 'Overview'), this.cards, h('h2', {}, 'Connections by protocol'), this.conns);
  },
  async refresh() {
    const b = broker;
    let cl = null;
    try { cl = await get('/api/cluster'); } catch (e) { /* standalone nodes answer too */ }
    const end = b.storeEnd ? b.storeEnd.epoch + ':' + b.storeEnd.index : '–';
    replace(this.cards,
      card('Role', h('span', {class: 'badge ' + b.role, id: 'overview-role'}, b.role)),
      card('Master', b.role === 'standalone' ? 'this broker' : (b.masterAdmin ? h('a', {href: b.masterAdmin + '/admin/'}, b.master) : (b.master || 'none elected'))),
      card('Epoch', b.epoch === undefined ? '–' : b.epoch),
      card('Uptime', duration(b.uptimeSeconds)),
      card('Version', b.version),
      card('Connections', b.serving ? num(b.connections) : '–'),
      card('Destinations', b.serving ? num(b.destinations) : '–'),
      card('Store', bytes(b.storeBytes) + ' · log ' + end),
      card('Health', h('span', {class: 'badge ' + (b.health === 'ok' ? 'ok' : 'bad')}, b.health)),
      card('Memory (RSS)', bytes(b.rssBytes)),
      cl && cl.zookeeper ? card('ZooKeeper', cl.zookeeper) : null,
      b.auth && b.auth.enabled ? card('Refused (login/read/write/admin)', ['login', 'read', 'write', 'admin'].map(k => num((b.auth.refusals || {})[k])).join(' / ')) : null);
    const by = b.connectionsByProtocol || {};
    const rows = Object.keys(by).sort().map(p => h('tr', {}, h('td', {}, p), h('td', {class: 'num'}, num(by[p]))));
    replace(this.conns, b.serving ? table(['Protocol', {label: 'Connections', num: true}], rows, 'No client is connected.') : h('p', {class: 'muted'}, 'A node that does not serve clients has no connections.'));
  },
};

function destView(kind) {
  const plural = kind + 's';
  return {
    title: kind === 'queue' ? 'Queues' : 'Topics',
    draw(main) {
      const name = h('input', {type: 'text', id: 'create-name', placeholder: kind === 'queue' ? 'orders' : 'sensors.kitchen', required: true});
      const form = h('form', {class: 'inline', id: 'create-form', onsubmit: (ev) => {
        ev.preventDefault();
        const n = name.value.trim();
        if (!n) return;
        act('Created ' + kind + ' ' + n, () => api('POST', '/api/' + plural + '/' + enc(n)));
        name.value = '';
      }}, h('label', {}, (kind === 'queue' ? 'Queue' : 'Topic') + ' name', name), h('button', {class: 'primary', id: 'create-button', type: 'submit'}, 'Create'));
      this.list = h('div', {id: plural + '-list'});
      main.append(h('h1', {}, this.title), form, this.list);
    },
    async refresh() {
      if (!broker.serving) return notServing(this.list);
      const all = await get('/api/destinations');
      const ds = all.filter(d => d.type === kind);
      const rows = ds.map(d => h('tr', {'data-name': d.name},
        h('td', {class: 'wrap'}, kind === 'queue' ? h('a', {href: '#/queue/' + enc(d.name)}, d.name) : d.name),
        kind === 'queue' ? h('td', {class: 'num'}, num(d.size)) : null,
        h('td', {class: 'num'}, num(d.consumers)),
        h('td', {class: 'num'}, num(d.enqueued)),
        h('td', {class: 'num'}, num(d.dequeued)),
        h('td', {class: 'num'}, num(d.deadLettered)),
        h('td', {class: 'num'}, num(kind === 'queue' ? d.expired : d.dropped)),
        h('td', {class: 'num'}, bytes(d.memoryBytes) + (d.memoryLimit ? ' (' + Math.round(100 * d.memoryBytes / d.memoryLimit) + '%)' : '')),
        h('td', {}, h('div', {class: 'actions'},
          kind === 'queue' ? h('a', {href: '#/queue/' + enc(d.name)}, h('button', {class: 'small', type: 'button'}, 'Browse')) : null,
          h('a', {href: '#/send/' + kind + '/' + enc(d.name)}, h('button', {class: 'small', type: 'button'}, 'Send')),
          kind === 'queue' ? h('button', {class: 'small', type: 'button', onclick: () => act('Purged ' + d.name, async () => (await api('POST', '/api/queues/' + enc(d.name) + '/purge')).purged + ' message(s)')}, 'Purge') : null,
          h('button', {class: 'small danger', type: 'button', onclick: () => act('Deleted ' + kind + ' ' + d.name, () => api('DELETE', '/api/' + plural + '/' + enc(d.name)))}, 'Delete')))));
      const cols = ['Name'];
      if (kind === 'queue') cols.push({label: 'Pending', num: true});
      cols.push({label: 'Consumers', num: true}, {label: 'Enqueued', num: true}, {label: 'Dequeued', num: true},
        {label: 'Dead-lettered', num: true}, {label: kind === 'queue' ? 'Expired' : 'Dropped', num: true}, {label: 'Memory', num: true}, 'Operations');
      replace(this.list, table(cols, rows, 'No ' + kind + ' yet.'));
    },
  };
}
views.queues = destView('queue');
views.topics = destView('topic');

// send: #/send/queue/NAME or #/send/topic/NAME
views.send = {
  title: 'Send',
  draw(main, args) {
    const kind = args[0] === 'topic' ? 'topic' : 'queue';
    const dest = h('input', {type: 'text', id: 'send-destination', value: args[1] || '', required: true});
    const type = h('select', {id: 'send-type'}, h('option', {value: 'queue', selected: kind === 'queue'}, 'queue'), h('option', {value: 'topic', selected: kind === 'topic'}, 'topic'));
    const body = h('textarea', {id: 'send-body', placeholder: 'the message body'});
    const headers = h('textarea', {id: 'send-headers', placeholder: 'one per line: key=value (correlationId, replyTo, contentType, ttl, or any property)'});
    const persistent = h('input', {type: 'checkbox', id: 'send-persistent', checked: true});
    const priority = h('select', {id: 'send-priority'}, [...Array(10).keys()].map(p => h('option', {value: p, selected: p === 4}, p)));
    const count = h('input', {type: 'number', id: 'send-count', value: 1, min: 1, max: 10000});
    const delay = h('input', {type: 'number', id: 'send-delay', value: 0, min: 0});
    const form = h('form', {class: 'stack', id: 'send-form', onsubmit: async (ev) => {
      ev.preventDefault();
      const q = new URLSearchParams();
      q.set('persistent', persistent.checked ? 'true' : 'false');
      q.set('priority', priority.value);
      if (parseInt(delay.value, 10) > 0) q.set('AMQ_SCHEDULED_DELAY', delay.value);
      for (const line of headers.value.split('\n')) {
        const i = line.indexOf('=');
        if (i > 0) q.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
      }
      const n = Math.max(1, parseInt(count.value, 10) || 1);
      const path = '/api/' + type.value + 's/' + enc(dest.value.trim()) + '/messages?' + q.toString();
      act('Sent ' + n + ' message(s) to ' + type.value + ' ' + dest.value.trim(), async () => {
        let id = '';
        for (let i = 0; i < n; i++) id = (await api('POST', path, body.value, {'Content-Type': 'text/plain; charset=utf-8'})).id;
        return 'last id ' + id;
      });
    }},
    h('label', {}, 'Destination type', type),
    h('label', {}, 'Destination name', dest),
    h('label', {}, 'Body', body),
    h('label', {}, 'Headers and properties', headers),
    h('div', {class: 'toolbar'},
      h('label', {class: 'check'}, persistent, 'Persistent'),
      h('label', {}, 'Priority', priority),
      h('label', {}, 'Copies', count),
      h('label', {}, 'Delay (ms)', delay)),
    h('div', {}, h('button', {class: 'primary', type: 'submit', id: 'send-button'}, 'Send')));
    main.append(h('h1', {}, 'Send a message'), form,
      h('p', {class: 'muted'}, h('a', {href: '#/' + kind + 's'}, '← ' + kind + 's')));
  },
  async refresh() {},
};

// msgList draws a page of browsed messages; open ones stay open across
// refreshes.
function msgList(view, page, ops) {
  view.open = view.open || new Set();
  return page.messages.map(m => {
    const props = Object.entries(m.properties || {});
    const d = h('details', {class: 'msg', 'data-id': m.id, open: view.open.has(m.id), ontoggle: (ev) => {
      if (ev.target.open) view.open.add(m.id); else view.open.delete(m.id);
    }},
    h('summary', {},
      h('strong', {}, m.id),
      h('span', {class: 'badge ' + (m.state === 'pending' ? 'ok' : 'slave')}, m.state),
      h('span', {class: 'muted'}, 'priority ' + m.priority),
      h('span', {class: 'muted'}, m.persistent ? 'persistent' : 'non-persistent'),
      h('span', {class: 'muted'}, m.timestamp || ''),
      h('span', {class: 'muted preview'}, m.bodyEncoding === 'text' ? m.body.slice(0, 80) : m.bodySize + ' bytes binary')),
    h('div', {class: 'detail'},
      h('dl', {class: 'kv'},
        ...[['Destination', m.destination], ['Delivery count', m.deliveryCount], ['Redelivered', m.redelivered],
          ['Correlation id', m.correlationId], ['Reply to', m.replyTo], ['Content type', m.contentType], ['Type', m.type],
          ['Expiration', m.expiration]].filter(([, v]) => v !== undefined && v !== '' && v !== null)
          .flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))]),
        ...props.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))])),
      h('div', {class: 'muted'}, 'Body: ' + num(m.bodySize) + ' bytes, ' + (m.bodyEncoding === 'text' ? 'text' : 'binary, in hex') +
        (m.bodyTruncated ? ' (cut short)' : '') + (m.bodyGone ? ' (no longer stored)' : '')),
      h('pre', {class: 'body'}, m.bodyEncoding === 'hex' ? m.body.replace(/(..)/g, '$1 ').trim() : m.body),
      ops ? ops(m) : null));
    return d;
  });
}

function pager(view, page, href) {
  const prev = Math.max(0, page.offset - page.limit);
  const next = page.offset + page.limit;
  const last = Math.min(page.total, page.offset + page.messages.length);
  return h('div', {class: 'pager'},
    h('span', {id: 'browse-range'}, page.total ? (page.offset + 1) + '–' + last + ' of ' + num(page.total) : 'No messages.'),
    h('span', {class: 'muted'}, num(page.pending) + ' pending' + (page.includesUnacknowledged ? ', ' + num(page.delivered) + ' delivered and not yet acknowledged (listed after the pending ones)' : '')),
    page.offset > 0 ? h('a', {href: href(prev)}, h('button', {class: 'small', type: 'button'}, '← Previous')) : null,
    next < page.total ? h('a', {href: href(next), id: 'browse-next'}, h('button', {class: 'small', type: 'button'}, 'Next →')) : null);
}

// queue: #/queue/NAME?offset=N — counters, operations and browsing.
views.queue = {
  title: 'Queue',
  draw(main, args, params) {
    this.name = args[0] || '';
    this.offset = parseInt(params.get('offset') || '0', 10) || 0;
    this.open = new Set();
    this.stats = h('div', {class: 'cards', id: 'queue-stats'});
    this.ops = h('div', {class: 'toolbar'},
      h('a', {href: '#/send/queue/' + enc(this.name)}, h('button', {type: 'button', id: 'queue-send'}, 'Send a message')),
      h('button', {type: 'button', id: 'queue-purge', onclick: () => act('Purged ' + this.name, async () => (await api('POST', '/api/queues/' + enc(this.name) + '/purge')).purged + ' message(s)')}, 'Purge'),
      h('button', {type: 'button', class: 'danger', id: 'queue-delete', onclick: () => act('Deleted queue ' + this.name, async () => { await api('DELETE', '/api/queues/' + enc(this.name)); location.hash = '#/queues'; })}, 'Delete'));
    this.dlq = h('div');
    this.list = h('div', {id: 'browse-list'});
    main.append(h('h1', {}, 'Queue ', h('span', {id: 'queue-name'}, this.name)), this.stats, this.ops, this.dlq, h('h2', {}, 'Messages'), this.list);
  },
  async refresh() {
    if (!broker.serving) return notServing(this.list);
    const q = enc(this.name);
    const [d, page] = await Promise.all([get('/api/queues/' + q), get('/api/queues/' + q + '/messages?offset=' + this.offset + '&limit=25')]);
    replace(this.stats, card('Pending', num(d.size), 'stat-size'), card('Consumers', num(d.consumers)), card('Enqueued', num(d.enqueued), 'stat-enqueued'),
      card('Dequeued', num(d.dequeued)), card('Dead-lettered', num(d.deadLettered)), card('Expired', num(d.expired)), card('Memory', bytes(d.memoryBytes)));
    const dead = page.messages.some(m => m.properties && m.properties.originalDestination) || this.name.startsWith('DLQ.');
    replace(this.dlq, dead ? h('div', {class: 'toolbar'},
      h('span', {class: 'muted'}, 'Dead letters go back to the destination they failed on (their originalDestination).'),
      h('button', {type: 'button', id: 'retry-all', onclick: () => act('Retried the messages of ' + this.name, async () => (await api('POST', '/api/queues/' + q + '/retry')).moved + ' moved')}, 'Retry all')) : null);
    const ops = (m) => h('div', {class: 'toolbar'},
      m.state === 'pending' && m.properties && m.properties.originalDestination ?
        h('button', {type: 'button', class: 'small', onclick: () => act('Retried ' + m.id, async () => (await api('POST', '/api/queues/' + q + '/retry?id=' + enc(m.id))).moved + ' moved to ' + m.properties.originalDestination)}, 'Retry to ' + m.properties.originalDestination) : null,
      m.state === 'pending' ? moveForm(q, m) : null);
    replace(this.list, pager(this, page, (o) => '#/queue/' + q + '?offset=' + o), msgList(this, page, ops));
  },
};

function moveForm(q, m) {
  const to = h('input', {type: 'text', placeholder: 'queue://other', size: 18});
  return h('form', {class: 'inline', onsubmit: (ev) => {
    ev.preventDefault();
    let t = to.value.trim();
    if (!t) return;
    if (!/^(queue|topic):\/\//.test(t)) t = 'queue://' + t;
    act('Moved ' + m.id, async () => (await api('POST', '/api/queues/' + q + '/move?to=' + enc(t) + '&id=' + enc(m.id))).moved + ' moved to ' + t);
  }}, to, h('button', {type: 'submit', class: 'small'}, 'Move'));
}

// durable: #/durable?clientId=C&name=N&offset=O — a durable subscription's messages.
views.durable = {
  title: 'Durable subscription',
  draw(main, args, params) {
    this.clientId = params.get('clientId') || '';
    this.name = params.get('name') || '';
    this.offset = parseInt(params.get('offset') || '0', 10) || 0;
    this.open = new Set();
    this.list = h('div', {id: 'browse-list'});
    main.append(h('h1', {}, 'Durable subscription ' + this.clientId + ' / ' + this.name), this.list);
  },
  async refresh() {
    if (!broker.serving) return notServing(this.list);
    const base = '/api/durables/messages?clientId=' + enc(this.clientId) + '&name=' + enc(this.name);
    const page = await get(base + '&offset=' + this.offset + '&limit=25');
    const link = (o) => '#/durable?clientId=' + enc(this.clientId) + '&name=' + enc(this.name) + '&offset=' + o;
    replace(this.list, pager(this, page, link), msgList(this, page));
  },
};

views.subscriptions = {
  title: 'Subscriptions',
  draw(main) {
    this.list = h('div', {id: 'subscriptions-list'});
    main.append(h('h1', {}, 'Subscriptions'), h('p', {class: 'muted'}, 'Consumers of queues, and topic subscriptions: durable ones stay, keeping messages, while their consumer is away.'), this.list);
  },
  async refresh() {
    if (!broker.serving) return notServing(this.list);
    const subs = await get('/api/subscriptions');
    const rows = subs.map(s => h('tr', {},
      h('td', {}, s.type),
      h('td', {class: 'wrap'}, s.type === 'queue' ? h('a', {href: '#/queue/' + enc(s.name)}, s.name) : s.name),
      h('td', {}, s.durable ? h('a', {href: '#/durable?clientId=' + enc(s.clientId) + '&name=' + enc(s.durable)}, s.clientId + ' / ' + s.durable) : (s.shared ? 'shared: ' + s.shared : '–')),
      h('td', {class: 'wrap'}, s.selector || ''),
      h('td', {}, h('span', {class: 'badge ' + (s.active ? 'ok' : 'slave')}, s.active ? 'active' : 'offline')),
      h('td', {class: 'num'}, s.connection ? s.connection : '–'),
      h('td', {class: 'num'}, num(s.pending)),
      h('td', {class: 'num'}, num(s.unacknowledged)),
      h('td', {class: 'num'}, s.prefetch ? num(s.prefetch) : '–')));
    replace(this.list, table(['Type', 'Destination', 'Durable', 'Selector', 'State', {label: 'Connection', num: true},
      {label: 'Pending', num: true}, {label: 'Unacknowledged', num: true}, {label: 'Prefetch', num: true}], rows, 'No subscription.'));
  },
};

views.connections = {
  title: 'Connections',
  draw(main) {
    this.list = h('div', {id: 'connections-list'});
    main.append(h('h1', {}, 'Connections'), this.list);
  },
  async refresh() {
    if (!broker.serving) return notServing(this.list);
    const cs = await get('/api/connections');
    const rows = cs.map(c => h('tr', {'data-id': c.id},
      h('td', {class: 'num'}, c.id),
      h('td', {}, c.protocol),
      h('td', {class: 'wrap'}, c.clientId || '–'),
      h('td', {}, c.user || (c.protocol === 'http' ? '' : 'anonymous')),
      h('td', {}, c.remoteAddress || '–'),
      h('td', {title: c.since || ''}, c.since ? ago(c.since) : '–'),
      h('td', {class: 'num'}, num(c.subscriptions)),
      h('td', {class: 'num'}, num(c.unacknowledged)),
      h('td', {}, c.closable ? h('button', {class: 'small danger', type: 'button', onclick: () => act('Closed connection ' + c.id, () => api('DELETE', '/api/connections/' + c.id))}, 'Close') : '')));
    replace(this.list, table([{label: 'Id', num: true}, 'Protocol', 'Client id', 'User', 'Remote address', 'Since',
      {label: 'Subscriptions', num: true}, {label: 'Unacknowledged', num: true}, ''], rows, 'No client is connected.'));
  },
};

function catchUp(c) {
  if (!c) return null;
  const done = c.phase === 'snapshot' ? c.doneBytes : c.records;
  const total = c.phase === 'snapshot' ? c.totalBytes : c.recordsTotal;
  const pct = total ? Math.min(100, Math.round(100 * done / total)) : 0;
  const bar = h('span');
  bar.style.width = pct + '%';
  return h('div', {}, h('div', {class: 'bar'}, bar),
    h('span', {class: 'muted'}, c.phase + ' ' + (c.phase === 'snapshot' ? bytes(done) + ' of ' + bytes(total) : num(done) + ' of ' + num(total) + ' records') +
      (c.bytesPerSecond ? ' at ' + bytes(c.bytesPerSecond) + '/s' : '')));
}

views.cluster = {
  title: 'Cluster',
  draw(main) {
    this.summary = h('div', {class: 'cards', id: 'cluster-summary'});
    this.list = h('div', {id: 'cluster-list'});
    main.append(h('h1', {}, 'Cluster'), this.summary, h('h2', {}, 'Nodes'), this.list);
  },
  async refresh() {
    const c = await get('/api/cluster/nodes');
    if (c.role === 'standalone') {
      replace(this.summary);
      replace(this.list, h('p', {id: 'cluster-standalone'}, 'This broker is standalone: it belongs to no cluster. ',
        h('span', {class: 'muted'}, 'hamq start --zk HOSTS --replicas 3 makes a node of one; hamq demo starts one on loopback.')));
      return;
    }
    replace(this.summary,
      card('This node', c.self + ' (' + c.role + ')'),
      card('Master', c.masterAdmin ? h('a', {href: c.masterAdmin + '/admin/'}, c.master) : (c.master || 'none elected')),
      card('Quorum', c.quorum + ' of ' + c.replicas + (c.confirming !== undefined ? ' · ' + c.confirming + ' confirming' : '')));
    const rows = c.nodes.map(n => {
      const st = n.status || {};
      let lag = '–';
      if (st.role === 'master') lag = '0';
      else if (st.catchUp) lag = catchUp(st.catchUp);
      else if (n.lag && n.lag.attached) lag = num(n.lag.lag) + ' records';
      else if (n.lag && n.lag.error) lag = 'not attached: ' + n.lag.error;
      else if (n.lag) lag = 'attaching';
      return h('tr', {'data-id': n.id},
        h('td', {}, n.id, n.id === c.self ? h('span', {class: 'muted'}, ' (this node)') : null),
        h('td', {}, n.reachable ? h('span', {class: 'badge ' + st.role}, st.role + (st.standingAside ? ' (standing aside)' : '')) : h('span', {class: 'badge bad'}, 'unreachable')),
        h('td', {}, n.admin ? h('a', {href: n.admin + '/admin/'}, n.admin) : '–'),
        h('td', {class: 'num'}, n.reachable ? st.epoch : '–'),
        h('td', {class: 'num'}, n.reachable && st.end ? st.end.epoch + ':' + st.end.index : '–'),
        h('td', {}, lag),
        h('td', {}, n.reachable ? st.zookeeper : (n.error || '–')),
        h('td', {}, n.reachable ? h('span', {class: 'badge ' + (st.health === 'ok' ? 'ok' : 'bad')}, st.health) : '–'));
    });
    replace(this.list, table(['Node', 'Role', 'Admin', {label: 'Epoch', num: true}, {label: 'Log end', num: true}, 'Lag / catch-up', 'ZooKeeper', 'Health'], rows, 'This node sees no member of its cluster.'));
  },
};

// ---- routing and polling ---------------------------------------------------

let current = null;
let timer = null;

function route() {
  const hash = location.hash || '#/overview';
  const [path, query] = hash.slice(1).split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  let name = parts[0] || 'overview';
  if (!views[name]) name = 'overview';
  current = views[name];
  for (const a of document.querySelectorAll('#nav a')) {
    const p = a.dataset.page;
    a.classList.toggle('active', p === name || (p === 'queues' && name === 'queue') || (p === 'subscriptions' && name === 'durable'));
  }
  const main = document.getElementById('main');
  main.replaceChildren();
  document.title = current.title + ' · hamq console';
  current.draw(main, parts.slice(1), new URLSearchParams(query || ''));
  refresh();
}

async function refresh() {
  clearTimeout(timer);
  const view = current;
  try {
    broker = await get('/api/broker');
    showNode();
    await view.refresh();
    const box = document.getElementById('view-error');
    if (box) box.remove();
    document.getElementById('updated').textContent = 'Updated ' + new Date().toLocaleTimeString('en-GB');
  } catch (e) {
    if (view === current) {
      const main = document.getElementById('main');
      let box = document.getElementById('view-error');
      if (!box) {
        box = h('p', {id: 'view-error', class: 'flash error'});
        main.append(box);
      }
      box.textContent = e.status === 401 || e.status === 403 ? 'Not allowed: ' + e.message : 'Cannot read the broker: ' + e.message;
    }
  }
  timer = setTimeout(refresh, POLL_MS);
}

window.addEventListener('hashchange', route);
window.addEventListener('DOMContentLoaded', route);
