/*
 * libloom-dns: the DNS server's native responder thread (docs/DNS.md, "Native responder";
 * docs/BENCHMARKS.md, "DNS tail"). Loaded through koffi by src/os/dns-responder.ts.
 *
 * Why: at 10,000 q/s every query wakes the server once; waking Node (libuv, V8, koffi) costs
 * ~10 us of CPU per query more than a C server's wake-up. Here one thread blocks in recvmmsg on
 * the DNS UDP socket and answers what the JS answer cache would answer from a current entry
 * (src/dns/answer.ts `replyFromCacheInto`), with sendmmsg: two syscalls per wake-up, no Node.
 *
 * Contracts:
 * - Answers only the `peekQuestion` case (src/dns/query.ts), byte for byte the same acceptance
 *   and key, from an entry JS put in the table, within the client's UDP limit, patched as
 *   `replyFromCacheInto` patches (id, RD, question bytes, answer owner names, Fisher-Yates over
 *   the A addresses with `j = floor(r * (i + 1))`, r a double in [0, 1)).
 * - Everything else (no entry, not peekable, too big, truncated) goes to JS unchanged through a
 *   single-producer single-consumer ring, with its source address, and an eventfd is written.
 *   A full ring makes the thread wait for JS (it stops reading, so the socket's own buffer holds
 *   what comes meanwhile, as on the JS path); a datagram is dropped only when stopping.
 * - The table holds only current entries: JS clears it (under the mutex) synchronously on every
 *   store change, with a new generation; a put of another generation is refused. When the arena
 *   or the table is full, a put empties the table first (the entries that keep being asked come
 *   back on their next miss).
 * - The thread never allocates: every buffer is made in create/start. Every offset read from a
 *   packet is bounds-checked; every offset of an entry is checked once, at put.
 * - Stop: a stop flag, then shutdown(SHUT_RD) wakes the blocked recvmmsg (returns 0 on Linux
 *   UDP); SO_RCVTIMEO bounds the wait should it not. Then join.
 * Only libc and pthreads. LP64 Linux.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define HEADER_BYTES 12
#define MAX_WIRE_NAME 255
#define KEY_MAX (MAX_WIRE_NAME + 1)
#define CLASSIC_UDP 512
#define MAX_UDP 4096
#define OPT_TYPE 41
#define CLASS_IN 1
#define SLOT_BYTES 4096
#define BATCH 32
#define RING_SLOTS 64
#define NAME_ROOM 28
#define RCVTIMEO_MS 500

/* Counters, in this order in loom_dns_stats' output (src/os/dns-responder.ts reads them). */
enum {
  ST_ANSWERED, ST_NXDOMAIN, ST_TO_JS, ST_RING_DROPS, ST_RECEIVES, ST_RECEIVED, ST_FLUSHES, ST_SENT,
  ST_SEND_ERRORS, ST_PUTS, ST_TABLE_RESETS, ST_RECV_ERRORS, ST_RING_WAITS, ST_COUNT
};
/* Answered per question type: 0..255 by number, 256 for every larger one. */
#define QTYPE_BUCKETS 257

struct entry {
  uint32_t hash;
  uint16_t key_len;
  uint16_t tlen;
  uint32_t key_at;
  uint32_t tmpl_at;
  uint32_t names_at;
  uint32_t addrs_at;
  uint16_t n_names;
  uint16_t n_addrs;
  uint8_t rcode;
  uint8_t pad;
  /* Live only when equal to the table's epoch: a reset is one increment, touching no slot. */
  uint32_t epoch;
};

struct ring_slot {
  uint32_t len;
  uint8_t truncated;
  uint8_t name_len;
  uint8_t pad[2];
  uint8_t name[NAME_ROOM];
  uint8_t data[SLOT_BYTES];
};

struct loom_dns {
  pthread_mutex_t lock;
  uint32_t generation;
  uint32_t epoch;
  struct entry *slots;
  uint32_t slot_mask;
  uint32_t count;
  uint32_t max_entries;
  uint8_t *arena;
  uint32_t arena_size;
  uint32_t arena_used;
  uint64_t rng;

  int fd;
  int efd;
  int running;
  int stop;
  pthread_t thread;

  struct ring_slot *ring;
  uint32_t ring_head; /* written by the thread */
  uint32_t ring_tail; /* written by JS */
  /* Back-pressure: the thread waits here while the ring is full (JS signals after a take). */
  pthread_mutex_t ring_lock;
  pthread_cond_t ring_space;
  int ring_waiting;

  struct mmsghdr rmsg[BATCH];
  struct iovec riov[BATCH];
  struct sockaddr_in6 rname[BATCH];
  uint8_t *rdata;
  struct mmsghdr smsg[BATCH];
  struct iovec siov[BATCH];
  uint8_t *sdata;

  uint64_t stats[ST_COUNT];
  uint64_t qtypes[QTYPE_BUCKETS];
};

static void count(struct loom_dns *h, int which, uint64_t n) {
  __atomic_store_n(&h->stats[which], h->stats[which] + n, __ATOMIC_RELAXED);
}

/* splitmix64; r in [0, 1) with 53 bits, as JS's `x * 2^-53`. */
static double next_random(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

static uint32_t hash_key(const uint8_t *key, uint32_t len) {
  uint32_t h = 0x811c9dc5u;
  for (uint32_t i = 0; i < len; i++) h = (h ^ key[i]) * 0x01000193u;
  return h;
}

static uint16_t be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static struct entry *find(struct loom_dns *h, const uint8_t *key, uint32_t len, uint32_t hash) {
  for (uint32_t i = hash & h->slot_mask;; i = (i + 1) & h->slot_mask) {
    struct entry *e = &h->slots[i];
    if (e->epoch != h->epoch) return e;
    if (e->hash == hash && e->key_len == len && memcmp(h->arena + e->key_at, key, len) == 0) return e;
  }
}

/* Empties the table in O(1) (every entry of an older epoch reads as empty), so a clear holds the lock for nanoseconds. */
static void reset_table(struct loom_dns *h) {
  if (++h->epoch == 0) {
    memset(h->slots, 0, (size_t)(h->slot_mask + 1) * sizeof(struct entry));
    h->epoch = 1;
  }
  h->count = 0;
  h->arena_used = 0;
}

/*
 * peekQuestion (src/dns/query.ts), then the table: the reply's length in `out`, or 0 when JS must
 * answer. Called with the lock held. `qtype` is set when answered.
 */
static uint32_t answer(struct loom_dns *h, const uint8_t *raw, uint32_t length, uint8_t *out, uint32_t cap, uint16_t *qtype, uint8_t *rcode) {
  uint8_t key[KEY_MAX];
  if (length < HEADER_BYTES + 5 || (raw[2] & 0xf8) != 0) return 0;
  if (raw[4] != 0 || raw[5] != 1 || raw[6] != 0 || raw[7] != 0 || raw[8] != 0 || raw[9] != 0 || raw[10] != 0) return 0;
  uint32_t additionals = raw[11];
  if (additionals > 1) return 0;
  uint32_t o = HEADER_BYTES, k = 0;
  for (;;) {
    if (o >= length) return 0;
    uint32_t label = raw[o];
    if (label == 0) break;
    if (label > 63 || o + label + 1 > length || o + label + 1 - HEADER_BYTES >= MAX_WIRE_NAME) return 0;
    key[k++] = (uint8_t)label;
    for (uint32_t i = o + 1, end = o + 1 + label; i < end; i++) {
      uint8_t c = raw[i];
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      else if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x5f)) return 0;
      key[k++] = c;
    }
    o += label + 1;
  }
  if (k == 0) return 0;
  uint32_t name_end = o + 1, question_end = name_end + 4;
  if (question_end > length || be16(raw + name_end + 2) != CLASS_IN) return 0;
  uint32_t udp_limit = CLASSIC_UDP;
  if (additionals == 0) {
    if (question_end != length) return 0;
  } else {
    if (length != question_end + 11 || raw[question_end] != 0 || be16(raw + question_end + 1) != OPT_TYPE || be16(raw + question_end + 9) != 0) return 0;
    udp_limit = be16(raw + question_end + 3);
    if (udp_limit < CLASSIC_UDP) udp_limit = CLASSIC_UDP;
    if (udp_limit > MAX_UDP) udp_limit = MAX_UDP;
  }
  uint16_t type = be16(raw + name_end);
  uint32_t kind = type == 1 ? 0 : type == 255 ? 1 : type == 12 ? 2 : 3;
  key[k++] = (uint8_t)(kind * 2 + additionals);
  if (h->count == 0) return 0;
  struct entry *e = find(h, key, k, hash_key(key, k));
  if (e->epoch != h->epoch || e->tlen > udp_limit || e->tlen > cap) return 0;
  /* The entry was checked at put: question and names of key_len bytes (= name_end - 12) fit. */
  const uint8_t *t = h->arena + e->tmpl_at;
  memcpy(out, t, e->tlen);
  out[0] = raw[0];
  out[1] = raw[1];
  out[2] = (uint8_t)((t[2] & 0xfe) | (raw[2] & 0x01));
  memcpy(out + HEADER_BYTES, raw + HEADER_BYTES, question_end - HEADER_BYTES);
  const uint16_t *names = (const uint16_t *)(h->arena + e->names_at);
  for (uint32_t n = 0; n < e->n_names; n++) memcpy(out + names[n], raw + HEADER_BYTES, name_end - HEADER_BYTES);
  const uint16_t *slots = (const uint16_t *)(h->arena + e->addrs_at);
  for (uint32_t i = e->n_addrs; i-- > 1;) {
    uint32_t j = (uint32_t)(next_random(&h->rng) * (double)(i + 1));
    uint8_t tmp[4];
    memcpy(tmp, out + slots[i], 4);
    memcpy(out + slots[i], out + slots[j], 4);
    memcpy(out + slots[j], tmp, 4);
  }
  *qtype = type;
  *rcode = e->rcode;
  return e->tlen;
}

/* ----- the thread ------------------------------------------------------------------------ */

static int push_to_js(struct loom_dns *h, const uint8_t *data, uint32_t len, int truncated, const void *name, uint32_t name_len) {
  uint32_t head = h->ring_head;
  uint32_t tail = __atomic_load_n(&h->ring_tail, __ATOMIC_ACQUIRE);
  if (head - tail >= RING_SLOTS) return 0;
  struct ring_slot *s = &h->ring[head % RING_SLOTS];
  s->len = len > SLOT_BYTES ? SLOT_BYTES : len;
  s->truncated = (uint8_t)(truncated != 0);
  s->name_len = (uint8_t)(name_len > NAME_ROOM ? NAME_ROOM : name_len);
  memcpy(s->name, name, s->name_len);
  memcpy(s->data, data, s->len);
  __atomic_store_n(&h->ring_head, head + 1, __ATOMIC_RELEASE);
  return 1;
}

static void send_all(struct loom_dns *h, uint32_t n) {
  uint32_t done = 0;
  while (done < n) {
    int sent = sendmmsg(h->fd, h->smsg + done, n - done, MSG_DONTWAIT);
    count(h, ST_FLUSHES, 1);
    if (sent > 0) {
      count(h, ST_SENT, (uint64_t)sent);
      done += (uint32_t)sent;
    } else if (sent < 0 && errno == EINTR) {
      continue;
    } else {
      /* The first one was refused (full buffer, unreachable): drop it, as a failed send would be. */
      count(h, ST_SEND_ERRORS, 1);
      done++;
    }
  }
}

static void wake_js(struct loom_dns *h, uint32_t passed) {
  count(h, ST_TO_JS, passed);
  uint64_t one = 1;
  ssize_t w = write(h->efd, &one, sizeof one);
  (void)w; /* EAGAIN only when the counter is at its maximum: JS is woken anyway. */
}

/*
 * The ring is full: wakes JS (counting the `passed` pushed since the last wake) and waits until
 * it takes (signalled by loom_dns_take; at most 100 ms per wait, then looks again). 0 when stopping.
 */
static int wait_for_ring(struct loom_dns *h, uint32_t passed) {
  wake_js(h, passed);
  count(h, ST_RING_WAITS, 1);
  pthread_mutex_lock(&h->ring_lock);
  __atomic_store_n(&h->ring_waiting, 1, __ATOMIC_SEQ_CST);
  while (!__atomic_load_n(&h->stop, __ATOMIC_SEQ_CST) && h->ring_head - __atomic_load_n(&h->ring_tail, __ATOMIC_SEQ_CST) >= RING_SLOTS) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 100 * 1000 * 1000;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&h->ring_space, &h->ring_lock, &until);
  }
  __atomic_store_n(&h->ring_waiting, 0, __ATOMIC_SEQ_CST);
  pthread_mutex_unlock(&h->ring_lock);
  return !__atomic_load_n(&h->stop, __ATOMIC_SEQ_CST);
}

static void *serve(void *arg) {
  struct loom_dns *h = arg;
  for (;;) {
    if (__atomic_load_n(&h->stop, __ATOMIC_ACQUIRE)) break;
    for (int i = 0; i < BATCH; i++) {
      h->rmsg[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_in6);
      h->rmsg[i].msg_hdr.msg_flags = 0;
    }
    int n = recvmmsg(h->fd, h->rmsg, BATCH, MSG_WAITFORONE, NULL);
    if (__atomic_load_n(&h->stop, __ATOMIC_ACQUIRE)) break;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
      count(h, ST_RECV_ERRORS, 1);
      if (errno == EBADF || errno == ENOTSOCK || errno == EINVAL) break;
      /* ICMP errors queued on the socket (ECONNREFUSED...) are reported once each: go on. */
      continue;
    }
    if (n == 0) continue;
    count(h, ST_RECEIVES, 1);
    count(h, ST_RECEIVED, (uint64_t)n);
    uint32_t replies = 0, passed = 0, answered = 0, nx = 0, pending = 0;
    uint8_t to_js[BATCH];
    pthread_mutex_lock(&h->lock);
    for (int i = 0; i < n; i++) {
      const uint8_t *raw = h->rdata + (size_t)i * SLOT_BYTES;
      uint32_t len = h->rmsg[i].msg_len;
      int truncated = (h->rmsg[i].msg_hdr.msg_flags & MSG_TRUNC) != 0 || len > SLOT_BYTES;
      uint16_t qtype = 0;
      uint8_t rcode = 0;
      uint8_t *out = h->sdata + (size_t)replies * SLOT_BYTES;
      uint32_t reply = truncated ? 0 : answer(h, raw, len, out, SLOT_BYTES, &qtype, &rcode);
      to_js[i] = reply == 0;
      if (reply > 0) {
        h->siov[replies].iov_len = reply;
        h->smsg[replies].msg_hdr.msg_name = &h->rname[i];
        h->smsg[replies].msg_hdr.msg_namelen = h->rmsg[i].msg_hdr.msg_namelen;
        replies++;
        answered++;
        if (rcode == 3) nx++;
        uint32_t bucket = qtype < 256 ? qtype : 256;
        __atomic_store_n(&h->qtypes[bucket], h->qtypes[bucket] + 1, __ATOMIC_RELAXED);
      } else {
        pending++;
      }
    }
    pthread_mutex_unlock(&h->lock);
    if (answered) count(h, ST_ANSWERED, answered);
    if (nx) count(h, ST_NXDOMAIN, nx);
    if (replies) send_all(h, replies);
    for (int i = 0; i < n && pending > 0; i++) {
      if (!to_js[i]) continue;
      uint32_t len = h->rmsg[i].msg_len;
      int truncated = (h->rmsg[i].msg_hdr.msg_flags & MSG_TRUNC) != 0 || len > SLOT_BYTES;
      while (!push_to_js(h, h->rdata + (size_t)i * SLOT_BYTES, len, truncated, &h->rname[i], h->rmsg[i].msg_hdr.msg_namelen)) {
        if (!wait_for_ring(h, passed)) {
          count(h, ST_RING_DROPS, pending);
          return NULL;
        }
        passed = 0;
      }
      passed++;
      pending--;
    }
    if (passed) wake_js(h, passed);
  }
  return NULL;
}

/* ----- the interface (koffi) ---------------------------------------------------------------- */

/* A handle with an empty table of `max_entries` (power of two slots at least twice as many) and `arena_bytes`. NULL on failure. */
void *loom_dns_create(uint32_t max_entries, uint32_t arena_bytes) {
  if (max_entries < 1 || max_entries > (1u << 20) || arena_bytes < 4096 || arena_bytes > (256u << 20)) return NULL;
  struct loom_dns *h = calloc(1, sizeof *h);
  if (!h) return NULL;
  uint32_t slots = 16;
  while (slots < max_entries * 2) slots <<= 1;
  h->slots = calloc(slots, sizeof(struct entry));
  h->arena = malloc(arena_bytes);
  if (!h->slots || !h->arena || pthread_mutex_init(&h->lock, NULL) != 0 || pthread_mutex_init(&h->ring_lock, NULL) != 0 || pthread_cond_init(&h->ring_space, NULL) != 0) {
    free(h->slots);
    free(h->arena);
    free(h);
    return NULL;
  }
  h->slot_mask = slots - 1;
  h->epoch = 1;
  h->max_entries = max_entries;
  h->arena_size = arena_bytes;
  h->fd = -1;
  h->efd = -1;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  h->rng = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)h;
  return h;
}

/* For tests: the round-robin order's state (call before start: the thread owns it after). */
void loom_dns_seed(void *handle, uint32_t hi, uint32_t lo) {
  struct loom_dns *h = handle;
  h->rng = ((uint64_t)hi << 32) | lo;
}

/* Empties the table; later puts must carry `generation`. */
void loom_dns_clear(void *handle, uint32_t generation) {
  struct loom_dns *h = handle;
  pthread_mutex_lock(&h->lock);
  reset_table(h);
  h->generation = generation;
  pthread_mutex_unlock(&h->lock);
}

/*
 * Stores the entry for `key` (peekQuestion's key bytes): the template, the answer owner-name
 * offsets and A address offsets (u16 each, host order), its rcode. 1 stored, 2 already there,
 * 0 refused (another generation, or offsets outside the template: nothing the thread could use).
 */
int loom_dns_put(void *handle, uint32_t generation, const uint8_t *key, uint32_t key_len, const uint8_t *tmpl, uint32_t tlen,
                 const uint16_t *names, uint32_t n_names, const uint16_t *addrs, uint32_t n_addrs, uint32_t rcode) {
  struct loom_dns *h = handle;
  if (key_len < 2 || key_len > KEY_MAX || tlen > MAX_UDP || n_names > 1024 || n_addrs > 1024) return 0;
  /* The reply copies the question (key_len + 4 bytes after the header) and key_len-byte names. */
  if (HEADER_BYTES + key_len + 4 > tlen) return 0;
  for (uint32_t i = 0; i < n_names; i++) if (names[i] < HEADER_BYTES || (uint32_t)names[i] + key_len > tlen) return 0;
  for (uint32_t i = 0; i < n_addrs; i++) if ((uint32_t)addrs[i] + 4 > tlen) return 0;
  uint32_t need = ((key_len + 1) & ~1u) + ((tlen + 1) & ~1u) + 2 * n_names + 2 * n_addrs;
  if (need > h->arena_size) return 0;
  uint32_t hash = hash_key(key, key_len);
  pthread_mutex_lock(&h->lock);
  int result = 0;
  if (generation != h->generation) goto done;
  struct entry *e = find(h, key, key_len, hash);
  if (e->epoch == h->epoch) {
    result = 2;
    goto done;
  }
  if (h->count >= h->max_entries || h->arena_used + need > h->arena_size) {
    reset_table(h);
    count(h, ST_TABLE_RESETS, 1);
    e = find(h, key, key_len, hash);
  }
  uint8_t *a = h->arena + h->arena_used;
  e->key_at = h->arena_used;
  memcpy(a, key, key_len);
  a += (key_len + 1) & ~1u;
  e->tmpl_at = (uint32_t)(a - h->arena);
  memcpy(a, tmpl, tlen);
  a += (tlen + 1) & ~1u;
  e->names_at = (uint32_t)(a - h->arena);
  memcpy(a, names, 2 * n_names);
  a += 2 * n_names;
  e->addrs_at = (uint32_t)(a - h->arena);
  memcpy(a, addrs, 2 * n_addrs);
  h->arena_used += need;
  e->hash = hash;
  e->key_len = (uint16_t)key_len;
  e->tlen = (uint16_t)tlen;
  e->n_names = (uint16_t)n_names;
  e->n_addrs = (uint16_t)n_addrs;
  e->rcode = (uint8_t)rcode;
  e->epoch = h->epoch;
  h->count++;
  count(h, ST_PUTS, 1);
  result = 1;
done:
  pthread_mutex_unlock(&h->lock);
  return result;
}

/* The reply the thread would send to `raw` (length), or 0: for tests, never with the thread running. */
int loom_dns_answer(void *handle, const uint8_t *raw, uint32_t len, uint8_t *out, uint32_t cap) {
  struct loom_dns *h = handle;
  uint16_t qtype;
  uint8_t rcode;
  pthread_mutex_lock(&h->lock);
  uint32_t n = answer(h, raw, len, out, cap, &qtype, &rcode);
  pthread_mutex_unlock(&h->lock);
  return (int)n;
}

/*
 * Starts the thread on `fd`, a bound UDP socket nobody else reads (the caller stops libuv's reads
 * first). Makes the socket blocking (the file description is shared: sends from JS go through
 * loom_dns_send, never blocking), with SO_RCVTIMEO as the stop's safety net. 0, or -errno.
 */
int loom_dns_start(void *handle, int fd) {
  struct loom_dns *h = handle;
  if (h->running || h->fd >= 0) return -EALREADY;
  if (!h->rdata) h->rdata = malloc((size_t)BATCH * SLOT_BYTES);
  if (!h->sdata) h->sdata = malloc((size_t)BATCH * SLOT_BYTES);
  if (!h->ring) h->ring = malloc((size_t)RING_SLOTS * sizeof(struct ring_slot));
  if (!h->rdata || !h->sdata || !h->ring) return -ENOMEM;
  for (int i = 0; i < BATCH; i++) {
    h->riov[i].iov_base = h->rdata + (size_t)i * SLOT_BYTES;
    h->riov[i].iov_len = SLOT_BYTES;
    h->rmsg[i].msg_hdr.msg_iov = &h->riov[i];
    h->rmsg[i].msg_hdr.msg_iovlen = 1;
    h->rmsg[i].msg_hdr.msg_name = &h->rname[i];
    h->siov[i].iov_base = h->sdata + (size_t)i * SLOT_BYTES;
    h->smsg[i].msg_hdr.msg_iov = &h->siov[i];
    h->smsg[i].msg_hdr.msg_iovlen = 1;
  }
  if (h->efd < 0) h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (h->efd < 0) return -errno;
  struct timeval tv = {RCVTIMEO_MS / 1000, (RCVTIMEO_MS % 1000) * 1000};
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0) return -errno;
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) return -errno;
  h->fd = fd;
  h->stop = 0;
  int err = pthread_create(&h->thread, NULL, serve, h);
  if (err != 0) {
    /* As it was: the caller goes on reading the socket without the thread. */
    fcntl(fd, F_SETFL, flags);
    h->fd = -1;
    return -err;
  }
  h->running = 1;
  /* For /proc (the bench tells the answering thread by it). */
  pthread_setname_np(h->thread, "loom-dns");
  return 0;
}

int loom_dns_event_fd(void *handle) { return ((struct loom_dns *)handle)->efd; }

/* The stride of loom_dns_take's records. */
int loom_dns_record_bytes(void) { return (int)sizeof(struct ring_slot); }

/*
 * Moves up to `max` datagrams the thread passed on into `out`, after resetting the eventfd (set
 * again when datagrams are left, so none is stranded by a bounded drain); one
 * record per loom_dns_record_bytes(): u32 length @0, u8 truncated @4, u8 address length @5, the
 * sockaddr @8 (28 bytes), the datagram @36. Returns how many. Only one caller at a time (JS).
 */
int loom_dns_take(void *handle, uint8_t *out, uint32_t max) {
  struct loom_dns *h = handle;
  if (h->efd >= 0) {
    uint64_t v;
    ssize_t r = read(h->efd, &v, sizeof v);
    (void)r;
  }
  if (!h->ring) return 0;
  uint32_t tail = h->ring_tail;
  uint32_t head = __atomic_load_n(&h->ring_head, __ATOMIC_ACQUIRE);
  uint32_t n = 0;
  while (tail != head && n < max) {
    struct ring_slot *s = &h->ring[tail % RING_SLOTS];
    uint8_t *rec = out + (size_t)n * sizeof(struct ring_slot);
    memcpy(rec, s, 4 + 4 + NAME_ROOM + s->len);
    tail++;
    n++;
  }
  __atomic_store_n(&h->ring_tail, tail, __ATOMIC_SEQ_CST);
  /* Left in the ring (JS takes a bounded number per wake-up): stay readable, so JS comes back on its next loop turn. */
  if (tail != __atomic_load_n(&h->ring_head, __ATOMIC_SEQ_CST) && h->efd >= 0) {
    uint64_t one = 1;
    ssize_t w = write(h->efd, &one, sizeof one);
    (void)w;
  }
  if (n > 0 && __atomic_load_n(&h->ring_waiting, __ATOMIC_SEQ_CST)) {
    pthread_mutex_lock(&h->ring_lock);
    pthread_cond_signal(&h->ring_space);
    pthread_mutex_unlock(&h->ring_lock);
  }
  return (int)n;
}

/* Sends one reply from JS to `name` (a sockaddr from loom_dns_take), never blocking. 0, or -errno. */
int loom_dns_send(void *handle, const uint8_t *reply, uint32_t len, const uint8_t *name, uint32_t name_len) {
  struct loom_dns *h = handle;
  if (h->fd < 0 || name_len > NAME_ROOM) return -EBADF;
  ssize_t sent = sendto(h->fd, reply, len, MSG_DONTWAIT, (const struct sockaddr *)name, name_len);
  return sent < 0 ? -errno : 0;
}

/* Copies the counters (ST_COUNT, then QTYPE_BUCKETS) into out, at most n; returns how many there are. */
int loom_dns_stats(void *handle, uint64_t *out, uint32_t n) {
  struct loom_dns *h = handle;
  for (uint32_t i = 0; i < n && i < ST_COUNT + QTYPE_BUCKETS; i++)
    out[i] = i < ST_COUNT ? __atomic_load_n(&h->stats[i], __ATOMIC_RELAXED) : __atomic_load_n(&h->qtypes[i - ST_COUNT], __ATOMIC_RELAXED);
  return ST_COUNT + QTYPE_BUCKETS;
}

/* Stops and joins the thread (idempotent); the socket is left to its owner. Returns 0. */
int loom_dns_stop(void *handle) {
  struct loom_dns *h = handle;
  if (!h->running) return 0;
  __atomic_store_n(&h->stop, 1, __ATOMIC_SEQ_CST);
  pthread_mutex_lock(&h->ring_lock);
  pthread_cond_signal(&h->ring_space);
  pthread_mutex_unlock(&h->ring_lock);
  /* ENOTCONN for an unconnected UDP socket, but the read side is shut and the sleeper woken. */
  shutdown(h->fd, SHUT_RD);
  pthread_join(h->thread, NULL);
  h->running = 0;
  h->fd = -1;
  return 0;
}

/* Stops, then frees everything (the handle is gone after). */
void loom_dns_destroy(void *handle) {
  struct loom_dns *h = handle;
  if (!h) return;
  loom_dns_stop(h);
  if (h->efd >= 0) close(h->efd);
  pthread_mutex_destroy(&h->lock);
  pthread_mutex_destroy(&h->ring_lock);
  pthread_cond_destroy(&h->ring_space);
  free(h->slots);
  free(h->arena);
  free(h->rdata);
  free(h->sdata);
  free(h->ring);
  free(h);
}
