import type { ServerResponse } from 'node:http';
import { httpDate } from '../core/utc-time.js';

/**
 * Gives `res` its Date header from src/core/utc-time.ts instead of Node's (which would load
 * ICU's time-zone data into the router: see there). Call before anything is written.
 */
export function stampDate(res: ServerResponse): void {
  res.sendDate = false;
  res.setHeader('Date', httpDate(Date.now()));
}
