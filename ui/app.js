// The live page: opens the router's event stream (/ui/events), redraws on each snapshot and adds
// each event as it comes. Everything from the network (nicknames, container names) goes into the
// page as text nodes, never as HTML.
import { buildModel, circleLayout, describeLink, formatRate, formatRtt, linkClass } from './model.js';

const SVG = 'http://www.w3.org/2000/svg';
const MAX_EVENTS = 200;

let previous = null;
let model = null;
/** What the details panel shows: { kind: 'peer' | 'link', key } */
let selected = null;
/** Events by seq (the snapshots' and the stream's). */
const events = new Map();

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function nicknameOf(name) {
  const p = model?.peers.find((x) => x.name === name);
  return p ? p.nickname || p.name : name;
}

function peerLabel(p) {
  return p.nickname ? `${p.nickname} (${p.name})` : p.name;
}

function onSnapshot(report) {
  const at = Date.now();
  model = buildModel(report, previous, at);
  previous = { report, at };
  for (const e of model.events) events.set(e.seq, e);
  render();
}

function onEvent(e) {
  events.set(e.seq, e);
  renderEvents();
}

function render() {
  if (!model) return;
  document.getElementById('self').textContent = `${model.selfNickname || model.self} · ${model.self}`;
  const reachable = model.peers.filter((p) => p.reachable).length;
  const gone = model.peers.length - reachable;
  const relayed = model.paths.filter((p) => p.path === 'relay').length;
  document.getElementById('summary').textContent =
    `${reachable} peer${reachable === 1 ? '' : 's'} reachable${gone > 0 ? `, ${gone} unreachable` : ''}; ` +
    `${model.links.filter((l) => l.established).length} connections; ${relayed} relayed from here; encryption ${model.encryption ? 'on' : 'off'}`;
  renderGraph();
  renderPeers();
  renderIpam();
  renderDns();
  renderEvents();
  renderDetails();
}

function renderGraph() {
  const root = document.getElementById('graph');
  const size = 600;
  const visible = model.peers;
  const at = circleLayout(visible.map((p) => p.name), size);
  const focused = document.activeElement?.closest?.('#graph [data-key]')?.getAttribute('data-key') ?? null;
  const nodes = [];
  for (const link of model.links) {
    const a = at.get(link.a);
    const b = at.get(link.b);
    if (!a || !b) continue;
    const cls = linkClass(link);
    const label = `${nicknameOf(link.a)} – ${nicknameOf(link.b)}: ${describeLink(link, nicknameOf)}${link.encrypted ? ', encrypted' : ''}${link.pmtu ? `, PMTU ${link.pmtu}` : ''}${link.rttMs !== null ? `, RTT ${formatRtt(link.rttMs)}` : ''}`;
    const g = svg('g', { class: `link ${cls}${link.encrypted ? ' encrypted' : ''}${selected?.key === link.key ? ' selected' : ''}`, tabindex: 0, role: 'button', 'aria-label': label, 'data-key': link.key, 'data-link': link.key, 'data-path': cls, 'data-established': link.established });
    g.append(svg('title', {}, label));
    g.append(svg('line', { class: 'hit', x1: a.x, y1: a.y, x2: b.x, y2: b.y }));
    g.append(svg('line', { class: 'main', x1: a.x, y1: a.y, x2: b.x, y2: b.y }));
    if (link.encrypted) g.append(svg('line', { class: 'inner', x1: a.x, y1: a.y, x2: b.x, y2: b.y }));
    if (link.local) {
      const mx = (a.x + b.x) / 2;
      const my = (a.y + b.y) / 2;
      g.append(svg('text', { x: mx, y: my - 6, 'text-anchor': 'middle' }, `${describeLink(link, nicknameOf)}${link.rttMs !== null ? ` · ${formatRtt(link.rttMs)}` : ''}`));
    }
    g.addEventListener('click', () => select('link', link.key));
    g.addEventListener('keydown', (ev) => activate(ev, 'link', link.key));
    nodes.push(g);
  }
  for (const p of visible) {
    const pos = at.get(p.name);
    const label = `${peerLabel(p)}${p.address ? ` at ${p.address}` : ''}${p.self ? ' (this host)' : ''}${p.reachable ? '' : ' (unreachable)'}, ${p.containers.length} container${p.containers.length === 1 ? '' : 's'}`;
    const g = svg('g', { class: `node${p.self ? ' self' : ''}${p.reachable ? '' : ' unreachable'}${selected?.key === p.name ? ' selected' : ''}`, tabindex: 0, role: 'button', 'aria-label': label, 'data-key': p.name, 'data-peer': p.name, 'data-reachable': p.reachable, transform: `translate(${pos.x} ${pos.y})` });
    g.append(svg('title', {}, label));
    g.append(svg('circle', { r: 30 }));
    g.append(svg('text', { y: 5 }, p.nickname || p.name.slice(-5)));
    g.append(svg('text', { class: 'sub', y: 46 }, p.address || p.name));
    const names = p.containers.map((c) => c.name).slice(0, 4);
    names.forEach((n, i) => g.append(svg('text', { class: 'sub', y: 62 + i * 14 }, n)));
    if (p.containers.length > names.length) g.append(svg('text', { class: 'sub', y: 62 + names.length * 14 }, `+${p.containers.length - names.length} more`));
    g.addEventListener('click', () => select('peer', p.name));
    g.addEventListener('keydown', (ev) => activate(ev, 'peer', p.name));
    nodes.push(g);
  }
  root.replaceChildren(...nodes);
  if (focused !== null) root.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
}

function activate(ev, kind, key) {
  if (ev.key !== 'Enter' && ev.key !== ' ') return;
  ev.preventDefault();
  select(kind, key);
}

function select(kind, key) {
  selected = { kind, key };
  render();
}

function pathCell(path) {
  if (!path) return el('td', {}, '–');
  const cls = path.path === 'relay' && path.via ? 'relay-hop' : path.path;
  const text = path.path === 'relay' && path.via ? `relay via ${nicknameOf(path.via)}` : path.path;
  const td = el('td', {}, el('span', { class: `path ${cls}` }, text));
  if (path.encrypted) td.append(' · encrypted');
  if (path.reason) td.append(el('br'), el('span', { class: 'muted' }, path.reason));
  return td;
}

function containerList(p) {
  if (p.containers.length === 0 && p.macCount === 0) return el('td', { class: 'muted' }, 'none');
  const ul = el('ul', { class: 'containers' });
  for (const c of p.containers) ul.append(el('li', {}, c.name, c.addresses.length ? ` ${c.addresses.join(', ')}` : '', c.mac ? ` · ${c.mac}` : '', c.alive ? '' : ' (exited)'));
  if (!p.self && p.macCount > 0) ul.append(el('li', { class: 'muted' }, `MACs: ${p.macs.join(', ')}${p.macCount > p.macs.length ? ` (+${p.macCount - p.macs.length})` : ''}`));
  return el('td', {}, ul);
}

function renderPeers() {
  const body = document.querySelector('#peers tbody');
  const rows = model.peers.map((p) => {
    const path = model.paths.find((x) => x.peer === p.name);
    return el(
      'tr',
      { 'data-peer-row': p.name, 'data-reachable': p.reachable },
      el('th', { scope: 'row' }, peerLabel(p), p.self ? el('span', { class: 'muted' }, ' (this host)') : '', p.reachable ? '' : el('span', { class: 'path unreachable' }, ' unreachable')),
      el('td', {}, p.address || '–'),
      p.self ? el('td', { class: 'muted' }, '–') : pathCell(path),
      el('td', {}, path?.pmtu ? String(path.pmtu) : '–'),
      el('td', {}, path ? formatRtt(path.rttMs) : '–'),
      el('td', {}, path ? `${formatRate(path.txBps)} / ${formatRate(path.rxBps)}` : '–'),
      containerList(p),
    );
  });
  body.replaceChildren(...rows);
}

const OWNER_COLOURS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

function renderIpam() {
  const root = document.getElementById('ipam');
  const { ipam } = model;
  if (!ipam.state) {
    root.replaceChildren(el('p', { class: 'muted' }, 'IPAM is off on this host.'));
    return;
  }
  const bar = el('div', { class: 'bar', role: 'img', 'aria-label': `share of ${ipam.range} owned by each peer` });
  ipam.owners.forEach((o, i) => {
    if (o.share <= 0) return;
    bar.append(el('span', { style: `width:${(o.share * 100).toFixed(3)}%;background:${OWNER_COLOURS[i % OWNER_COLOURS.length]}`, title: `${o.nickname || o.name}: ${(o.share * 100).toFixed(1)}%` }));
  });
  const table = el('table', {}, el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Owner'), el('th', { scope: 'col' }, 'Owned'), el('th', { scope: 'col' }, 'Share'), el('th', { scope: 'col' }, 'In use'), el('th', { scope: 'col' }, 'Reachable'))));
  const body = el('tbody');
  ipam.owners.forEach((o, i) => {
    body.append(
      el(
        'tr',
        {},
        el('th', { scope: 'row' }, el('span', { style: `color:${OWNER_COLOURS[i % OWNER_COLOURS.length]}` }, '■ '), o.nickname ? `${o.nickname} (${o.name})` : o.name),
        el('td', {}, o.owned.toLocaleString()),
        el('td', {}, `${(o.share * 100).toFixed(1)}%`),
        el('td', {}, o.inUse.toLocaleString()),
        el('td', {}, o.reachable ? 'yes' : el('span', { class: 'path unreachable' }, 'no')),
      ),
    );
  });
  table.append(body);
  const parts = [el('p', {}, `Range ${ipam.range} (${ipam.rangeSize.toLocaleString()} addresses), state ${ipam.state}, ${ipam.allocations} allocated on this host.`), bar, table];
  if (ipam.unreachableOwners.length > 0) {
    const list = el('ul');
    for (const name of ipam.unreachableOwners) list.append(el('li', {}, `${nicknameOf(name)}: if it is gone for good, reclaim its space with `, el('code', {}, `loom rmpeer ${name}`)));
    parts.push(el('p', {}, 'Owners that cannot be reached:'), list);
  }
  root.replaceChildren(...parts);
}

function renderDns() {
  const body = document.querySelector('#dns tbody');
  if (model.dns.records.length === 0) {
    body.replaceChildren(el('tr', {}, el('td', { colspan: 3, class: 'muted' }, model.dns.domain ? 'no entries' : 'DNS is off on this host')));
    return;
  }
  body.replaceChildren(...model.dns.records.map((r) => el('tr', {}, el('td', {}, r.name), el('td', {}, r.address), el('td', {}, r.originNickname || nicknameOf(r.origin)))));
}

function renderEvents() {
  const list = document.getElementById('events');
  const sorted = [...events.values()].sort((a, b) => b.seq - a.seq);
  for (const e of sorted.slice(MAX_EVENTS)) events.delete(e.seq);
  list.replaceChildren(
    ...sorted.slice(0, MAX_EVENTS).map((e) => {
      const t = new Date(e.time);
      return el('li', { 'data-kind': e.kind }, el('time', { datetime: t.toISOString() }, t.toLocaleTimeString()), el('span', { class: 'kind' }, e.kind), e.text);
    }),
  );
}

function renderDetails() {
  const root = document.getElementById('details');
  if (!selected || !model) return;
  if (selected.kind === 'peer') {
    const p = model.peers.find((x) => x.name === selected.key);
    if (!p) return root.replaceChildren(el('p', { class: 'muted' }, 'That peer has left the mesh.'));
    const path = model.paths.find((x) => x.peer === p.name);
    const dl = el('dl');
    const row = (k, v) => dl.append(el('dt', {}, k), el('dd', {}, v));
    row('Name', p.name);
    row('Nickname', p.nickname || '–');
    row('Address', p.address || '–');
    row('Reachable', p.reachable ? 'yes' : 'no');
    if (path) {
      row('Data path', path.path === 'relay' && path.via ? `relay via ${nicknameOf(path.via)}` : path.path);
      row('Path MTU', path.pmtu ? String(path.pmtu) : '–');
      row('RTT', formatRtt(path.rttMs));
      row('Relay throughput out / in', `${formatRate(path.txBps)} / ${formatRate(path.rxBps)}`);
    }
    row('Containers', p.containers.map((c) => `${c.name} ${c.addresses.join(', ')}${c.mac ? ` ${c.mac}` : ''}`).join('; ') || 'none');
    root.replaceChildren(el('h3', {}, peerLabel(p)), dl);
  } else {
    const l = model.links.find((x) => x.key === selected.key);
    if (!l) return root.replaceChildren(el('p', { class: 'muted' }, 'That connection has ended.'));
    const dl = el('dl');
    const row = (k, v) => dl.append(el('dt', {}, k), el('dd', {}, v));
    row('State', l.established ? 'established' : 'connecting');
    row('Data path', describeLink(l, nicknameOf));
    if (l.local) {
      row('Encrypted', l.encrypted ? 'yes' : 'no');
      row('Path MTU', l.pmtu ? String(l.pmtu) : '–');
      row('RTT', formatRtt(l.rttMs));
      row('Relay throughput out / in', `${formatRate(l.txBps)} / ${formatRate(l.rxBps)}`);
      if (l.reason) row('Why not the fast path', l.reason);
    } else {
      row('Note', 'a connection between two other peers: its data path is known on those hosts');
    }
    root.replaceChildren(el('h3', {}, `${nicknameOf(l.a)} – ${nicknameOf(l.b)}`), dl);
  }
}

function connect() {
  const badge = document.getElementById('connection');
  const source = new EventSource('/ui/events');
  source.addEventListener('open', () => {
    badge.dataset.state = 'live';
    badge.textContent = 'live';
  });
  source.addEventListener('error', () => {
    badge.dataset.state = 'lost';
    badge.textContent = 'reconnecting…';
  });
  source.addEventListener('snapshot', (m) => {
    badge.dataset.state = 'live';
    badge.textContent = 'live';
    onSnapshot(JSON.parse(m.data));
  });
  source.addEventListener('loom-event', (m) => onEvent(JSON.parse(m.data)));
}

connect();
