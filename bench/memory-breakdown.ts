/**
 * Where a process's resident memory is (`npm run bench -- memory --detail`): every page counted
 * in its RSS, by what backs it. From /proc/PID/smaps (per mapping: resident, anonymous) and, for
 * the node binary, /proc/PID/pagemap (which of its pages this process has mapped: root only) read
 * against the binary's ELF section headers, so the binary's part splits into code (.text), ICU's
 * data (the icudt*_dat symbol in .rodata), the rest of .rodata (builtins' JavaScript sources and
 * their code cache, V8's tables) and the dynamic symbol tables (looked up when a native addon is
 * loaded). Anonymous memory splits by mapping: glibc's main arena ([heap]), 256 KiB mappings
 * (V8's heap pages; the rest of V8's heap is in larger ones) and the other anonymous mappings
 * (thread stacks, the other malloc arena, V8's large objects and code). Read-only: nothing here
 * changes the process.
 */
import { closeSync, openSync, readFileSync, readSync, realpathSync } from 'node:fs';

export interface Breakdown {
  /** KiB per category; the categories add up to the smaps total. */
  kib: Record<string, number>;
  totalKib: number;
}

interface Section {
  name: string;
  offset: number;
  size: number;
  addr: number;
}

interface BinaryLayout {
  sections: Section[];
  /** File offsets [start, end) of ICU's data (icudt*_dat), if the binary exports it. */
  icu: [number, number] | null;
}

const layouts = new Map<string, BinaryLayout>();

/** Section headers and ICU's data range of an ELF64 little-endian file (the node binary). */
function binaryLayout(file: string): BinaryLayout {
  const cached = layouts.get(file);
  if (cached) return cached;
  const fd = openSync(file, 'r');
  try {
    const read = (offset: number, length: number): Buffer => {
      const buf = Buffer.alloc(length);
      readSync(fd, buf, 0, length, offset);
      return buf;
    };
    const header = read(0, 64);
    if (header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2 || header[5] !== 1) throw new Error(`${file} is not a 64-bit little-endian ELF file`);
    const shoff = Number(header.readBigUInt64LE(0x28));
    const shentsize = header.readUInt16LE(0x3a);
    const shnum = header.readUInt16LE(0x3c);
    const shstrndx = header.readUInt16LE(0x3e);
    const table = read(shoff, shentsize * shnum);
    const raw = Array.from({ length: shnum }, (_, i) => {
      const at = i * shentsize;
      return {
        nameOffset: table.readUInt32LE(at),
        addr: Number(table.readBigUInt64LE(at + 0x10)),
        offset: Number(table.readBigUInt64LE(at + 0x18)),
        size: Number(table.readBigUInt64LE(at + 0x20)),
      };
    });
    const names = raw[shstrndx] ? read(raw[shstrndx].offset, raw[shstrndx].size) : Buffer.alloc(0);
    const cstr = (buf: Buffer, at: number): string => buf.toString('latin1', at, buf.indexOf(0, at));
    const sections = raw.map((s) => ({ name: cstr(names, s.nameOffset), offset: s.offset, size: s.size, addr: s.addr }));
    let icu: [number, number] | null = null;
    const dynsym = sections.find((s) => s.name === '.dynsym');
    const dynstr = sections.find((s) => s.name === '.dynstr');
    const rodata = sections.find((s) => s.name === '.rodata');
    if (dynsym && dynstr && rodata) {
      const syms = read(dynsym.offset, dynsym.size);
      const strs = read(dynstr.offset, dynstr.size);
      for (let at = 0; at + 24 <= syms.length; at += 24) {
        const name = cstr(strs, syms.readUInt32LE(at));
        if (!/^icudt\d+_dat$/.test(name)) continue;
        const start = Number(syms.readBigUInt64LE(at + 8)) - rodata.addr + rodata.offset;
        icu = [start, start + Number(syms.readBigUInt64LE(at + 16))];
        break;
      }
    }
    const layout = { sections, icu };
    layouts.set(file, layout);
    return layout;
  } finally {
    closeSync(fd);
  }
}

/** What a page of the node binary at `offset` holds. */
function binaryCategory(layout: BinaryLayout, offset: number): string {
  if (layout.icu && offset >= layout.icu[0] && offset < layout.icu[1]) return 'node: ICU data';
  const section = layout.sections.find((s) => s.size > 0 && offset >= s.offset && offset < s.offset + s.size)?.name ?? '';
  if (section === '.text') return 'node: code (.text)';
  if (section === '.rodata') return 'node: .rodata but ICU (builtins\' JS and code cache, V8 tables)';
  if (['.dynsym', '.dynstr', '.gnu.hash', '.gnu.version', '.gnu.version_r'].includes(section)) return 'node: dynamic symbol tables';
  return 'node: other sections';
}

interface Mapping {
  start: number;
  end: number;
  offset: number;
  path: string;
  rssKib: number;
  anonKib: number;
}

function mappings(pid: number): Mapping[] {
  const out: Mapping[] = [];
  let current: Mapping | null = null;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      current = { start: parseInt(head[1]!, 16), end: parseInt(head[2]!, 16), offset: parseInt(head[3]!, 16), path: head[4]!.trim(), rssKib: 0, anonKib: 0 };
      out.push(current);
      continue;
    }
    const field = /^(Rss|Anonymous):\s+(\d+) kB/.exec(line);
    if (field && current) {
      if (field[1] === 'Rss') current.rssKib = Number(field[2]);
      else current.anonKib = Number(field[2]);
    }
  }
  return out;
}

const PAGE = 4096;

/** File offsets of the pages of `m` that are in `pid`'s page tables (pagemap's present bit). */
function residentOffsets(pagemapFd: number, m: Mapping): number[] {
  const pages = (m.end - m.start) / PAGE;
  const out: number[] = [];
  const chunk = Buffer.alloc(8 * 4096);
  for (let first = 0; first < pages; first += 4096) {
    const n = Math.min(4096, pages - first);
    readSync(pagemapFd, chunk, 0, n * 8, (m.start / PAGE + first) * 8);
    for (let i = 0; i < n; i++) if ((chunk[i * 8 + 7]! & 0x80) !== 0) out.push(m.offset + (first + i) * PAGE);
  }
  return out;
}

function fileCategory(path: string): string {
  if (path.endsWith('.node')) return `addon: ${path.replace(/^.*node_modules\//, '').replace(/\/.*$/, '')}`;
  if (/\/(libc|libstdc\+\+|libm|libgcc_s|libpthread|libdl|ld-linux[^/]*)\.so/.test(path)) return 'libc, libstdc++, libm, ld.so';
  return 'other files';
}

/** `pid`'s resident memory by category (KiB). `nodeBinary` is the node executable's real path (default: this process's). */
export function residentBreakdown(pid: number, nodeBinary: string = realpathSync(process.execPath)): Breakdown {
  const kib: Record<string, number> = {};
  const add = (k: string, v: number): void => {
    if (v > 0) kib[k] = (kib[k] ?? 0) + v;
  };
  const layout = binaryLayout(nodeBinary);
  const pagemap = openSync(`/proc/${pid}/pagemap`, 'r');
  let totalKib = 0;
  try {
    for (const m of mappings(pid)) {
      totalKib += m.rssKib;
      const fileKib = m.rssKib - m.anonKib;
      if (m.path === nodeBinary) {
        // Private copies (relocations, .data written) are anonymous; the rest are the file's pages.
        add('anonymous: other', m.anonKib);
        if (fileKib > 0) {
          const counted: Record<string, number> = {};
          for (const offset of residentOffsets(pagemap, m)) {
            const c = binaryCategory(layout, offset);
            counted[c] = (counted[c] ?? 0) + PAGE / 1024;
          }
          // pagemap counts the anonymous copies too: scale to the file-backed part.
          const sum = Object.values(counted).reduce((a, b) => a + b, 0);
          for (const [c, v] of Object.entries(counted)) add(c, Math.round((v * fileKib) / Math.max(sum, 1)));
        }
        continue;
      }
      if (m.path.startsWith('/')) {
        add(fileCategory(m.path), fileKib);
        add('anonymous: other', m.anonKib);
        continue;
      }
      if (m.path === '[heap]') add('anonymous: malloc main arena ([heap])', m.rssKib);
      else if (m.path === '' && m.end - m.start === 256 * 1024) add('anonymous: 256 KiB mappings (V8 heap pages)', m.rssKib);
      else if (m.path === '[stack]') add('anonymous: main thread stack', m.rssKib);
      else if (m.path === '') add('anonymous: other', m.rssKib);
      else add(`other: ${m.path}`, m.rssKib);
    }
  } finally {
    closeSync(pagemap);
  }
  return { kib, totalKib };
}

/** A markdown table of breakdowns side by side (MB, one decimal), rows in a stable order. */
export function breakdownTable(columns: Array<{ name: string; breakdown: Breakdown }>): string {
  const keys = [...new Set(columns.flatMap((c) => Object.keys(c.breakdown.kib)))].sort((a, b) => {
    const rank = (k: string): number => (k.startsWith('node:') ? 0 : k.startsWith('libc') ? 1 : k.startsWith('addon') ? 2 : k.startsWith('other') ? 3 : 4);
    return rank(a) - rank(b) || a.localeCompare(b);
  });
  const mb = (k: number | undefined): string => ((k ?? 0) / 1024).toFixed(1);
  const lines = [`| MB | ${columns.map((c) => c.name).join(' | ')} |`, `|---|${columns.map(() => '---|').join('')}`];
  for (const k of keys) lines.push(`| ${k} | ${columns.map((c) => mb(c.breakdown.kib[k])).join(' | ')} |`);
  lines.push(`| **total (smaps)** | ${columns.map((c) => `**${mb(c.breakdown.totalKib)}**`).join(' | ')} |`);
  return lines.join('\n');
}
