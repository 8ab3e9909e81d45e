/**
 * Reads a server-sent events stream (the subset Loom's server writes, see ./sse-hub.ts): lines
 * `event: NAME`, `data: ...` (several are joined by newlines), `id:`, `retry:`, comments (`:`),
 * a blank line ending each message. Chunks may split lines anywhere; at most `maxMessageBytes`
 * may pile up before a blank line (a stream that is not ours fails with ERR_PROTOCOL).
 */
import { LoomError } from '../core/errors.js';

export interface SseMessage {
  event: string;
  data: string;
}

export class SseParser {
  private buffer = '';
  private event = '';
  private data: string[] = [];
  private size = 0;

  constructor(
    private readonly onMessage: (message: SseMessage) => void,
    private readonly maxMessageBytes = 8 << 20,
  ) {}

  push(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline).replace(/\r$/, '');
      this.buffer = this.buffer.slice(newline + 1);
      this.line(line);
    }
    if (this.buffer.length + this.size > this.maxMessageBytes) throw new LoomError('ERR_PROTOCOL', `event stream message over ${this.maxMessageBytes} bytes`);
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length > 0) this.onMessage({ event: this.event === '' ? 'message' : this.event, data: this.data.join('\n') });
      this.event = '';
      this.data = [];
      this.size = 0;
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + (line[colon + 1] === ' ' ? 2 : 1));
    if (field === 'event') this.event = value;
    else if (field === 'data') {
      this.data.push(value);
      this.size += value.length;
    }
  }
}
