/*
 * dns-tap: the time each DNS query spends in a server, seen from outside the server, the same way
 * for every server (bench/dns.ts compiles and runs it in the servers' lab host).
 *
 *   dns-tap IFNAME PORT SECONDS
 *
 * Watches IFNAME with a TPACKET_V3 ring (AF_PACKET, ETH_P_ALL: only those see outgoing frames;
 * anything but IPv4/UDP is skipped): the kernel stamps each IPv4/UDP frame as it
 * crosses the device, a query to PORT on its way in, the reply from PORT on its way out. The
 * reply is matched to its query by (client address, client port, DNS id); the difference is the
 * server's time: socket queue, wake-up, answering, send, for whatever server owns PORT. The ring
 * is read every 50 ms (the kernel retires a block then), so the tap wakes ~20 times a second, not
 * per packet. After SECONDS it prints one line and exits:
 *
 *   tap <histogram> <queries seen> <unmatched replies>
 *
 * in bench/dns/histogram.ts's text form (same buckets, µs). Bounded: SECONDS <= 600; the table of
 * queries waiting for their reply is fixed (a newer query overwrites an older one in its slot).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LINEAR 64
#define SUB 32
#define MAX_EXP 30
#define BUCKETS (LINEAR + (MAX_EXP - 5) * SUB)
#define SLOTS 65536
#define BLOCK_SIZE (1 << 20)
#define BLOCKS 16

static double counts[BUCKETS];
static double total, max_us;

static int bucket_of(double us) {
  if (!(us >= 1)) return 0;
  uint64_t v = (uint64_t)us;
  if (v < LINEAR) return (int)v;
  if (v >= (1ull << (MAX_EXP + 1))) return BUCKETS - 1;
  int e = 63 - __builtin_clzll(v);
  uint64_t m = v >> (e - 5);
  return LINEAR + (e - 6) * SUB + (int)(m - SUB);
}

static void record(double us) {
  counts[bucket_of(us)]++;
  total++;
  if (us > max_us) max_us = us;
}

struct pending {
  uint64_t key; /* client address << 32 | client port << 16 | id; 0 = empty */
  uint64_t ns;
};
static struct pending table[SLOTS];

static uint32_t slot_of(uint64_t key) {
  key ^= key >> 29;
  key *= 0xbf58476d1ce4e5b9ull;
  key ^= key >> 32;
  return (uint32_t)(key & (SLOTS - 1));
}

static uint64_t queries, unmatched;

/* One frame at `l3` (the IPv4 header; SOCK_DGRAM strips the link header), stamped `ns`. */
static void frame(const uint8_t *l3, uint32_t len, uint64_t ns, uint16_t port) {
  if (len < 20 || (l3[0] >> 4) != 4 || l3[9] != 17) return;
  uint32_t ihl = (uint32_t)(l3[0] & 15) * 4;
  if (len < ihl + 8 + 12) return;
  const uint8_t *udp = l3 + ihl;
  uint16_t sport = (uint16_t)(udp[0] << 8 | udp[1]);
  uint16_t dport = (uint16_t)(udp[2] << 8 | udp[3]);
  const uint8_t *dns = udp + 8;
  uint16_t id = (uint16_t)(dns[0] << 8 | dns[1]);
  int response = (dns[2] & 0x80) != 0;
  uint32_t src, dst;
  memcpy(&src, l3 + 12, 4);
  memcpy(&dst, l3 + 16, 4);
  if (dport == port && !response) {
    uint64_t key = (uint64_t)src << 32 | (uint64_t)sport << 16 | id;
    struct pending *p = &table[slot_of(key)];
    p->key = key;
    p->ns = ns;
    queries++;
  } else if (sport == port && response) {
    uint64_t key = (uint64_t)dst << 32 | (uint64_t)dport << 16 | id;
    struct pending *p = &table[slot_of(key)];
    if (p->key != key) {
      unmatched++;
      return;
    }
    record((double)(ns - p->ns) / 1e3);
    p->key = 0;
  }
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: dns-tap IFNAME PORT SECONDS\n");
    return 2;
  }
  unsigned ifindex = if_nametoindex(argv[1]);
  long port = strtol(argv[2], NULL, 10);
  long seconds = strtol(argv[3], NULL, 10);
  if (ifindex == 0 || port < 1 || port > 65535 || seconds < 1 || seconds > 600) {
    fprintf(stderr, "dns-tap: bad interface, port or seconds\n");
    return 2;
  }
  int fd = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_ALL));
  if (fd < 0) {
    perror("dns-tap: socket");
    return 1;
  }
  int version = TPACKET_V3;
  if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof version) != 0) {
    perror("dns-tap: PACKET_VERSION");
    return 1;
  }
  struct tpacket_req3 req = {0};
  req.tp_block_size = BLOCK_SIZE;
  req.tp_block_nr = BLOCKS;
  req.tp_frame_size = 2048;
  req.tp_frame_nr = (BLOCK_SIZE / 2048) * BLOCKS;
  req.tp_retire_blk_tov = 50;
  if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) != 0) {
    perror("dns-tap: PACKET_RX_RING");
    return 1;
  }
  uint8_t *ring = mmap(NULL, (size_t)BLOCK_SIZE * BLOCKS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (ring == MAP_FAILED) {
    perror("dns-tap: mmap");
    return 1;
  }
  struct sockaddr_ll at = {0};
  at.sll_family = AF_PACKET;
  at.sll_protocol = htons(ETH_P_ALL);
  at.sll_ifindex = (int)ifindex;
  if (bind(fd, (struct sockaddr *)&at, sizeof at) != 0) {
    perror("dns-tap: bind");
    return 1;
  }
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  unsigned block = 0;
  for (;;) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - start.tv_sec >= seconds) break;
    struct tpacket_block_desc *desc = (struct tpacket_block_desc *)(ring + (size_t)block * BLOCK_SIZE);
    if ((desc->hdr.bh1.block_status & TP_STATUS_USER) == 0) {
      struct pollfd pfd = {.fd = fd, .events = POLLIN | POLLERR};
      poll(&pfd, 1, 100);
      continue;
    }
    struct tpacket3_hdr *h = (struct tpacket3_hdr *)((uint8_t *)desc + desc->hdr.bh1.offset_to_first_pkt);
    for (uint32_t i = 0; i < desc->hdr.bh1.num_pkts; i++) {
      frame((uint8_t *)h + h->tp_net, h->tp_snaplen - (h->tp_net - h->tp_mac), (uint64_t)h->tp_sec * 1000000000ull + h->tp_nsec, (uint16_t)port);
      h = (struct tpacket3_hdr *)((uint8_t *)h + h->tp_next_offset);
    }
    desc->hdr.bh1.block_status = TP_STATUS_KERNEL;
    block = (block + 1) % BLOCKS;
  }
  printf("tap %.0f:%.1f:", total, max_us);
  int any = 0;
  for (int i = 0; i < BUCKETS; i++) {
    if (counts[i] == 0) continue;
    printf("%s%d=%.0f", any ? "," : "", i, counts[i]);
    any = 1;
  }
  printf("%s %llu %llu\n", any ? "" : "-", (unsigned long long)queries, (unsigned long long)unmatched);
  return 0;
}
