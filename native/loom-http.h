/*
 * What both native executables share (native/loom-cni.c, native/loom.c): one HTTP/1.1 request to
 * the router's local socket and its answer, JSON string escaping, whole writes. Only libc; every
 * buffer is sized before it is filled and bounded. Static functions: each executable is one
 * translation unit.
 */
#ifndef LOOM_HTTP_H
#define LOOM_HTTP_H

#define _GNU_SOURCE
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

/* Bytes `s` takes as a JSON string body (without the quotes). */
static size_t escaped_len(const unsigned char *s, size_t n) {
  size_t len = 0;
  for (size_t i = 0; i < n; i++) len += (s[i] == '"' || s[i] == '\\') ? 2 : s[i] < 0x20 ? 6 : 1;
  return len;
}

static char *escape_into(char *out, const unsigned char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = s[i];
    if (c == '"' || c == '\\') {
      *out++ = '\\';
      *out++ = (char)c;
    } else if (c < 0x20) {
      memcpy(out, "\\u00", 4);
      out[4] = hex[c >> 4];
      out[5] = hex[c & 15];
      out += 6;
    } else {
      *out++ = (char)c;
    }
  }
  return out;
}

static int write_all(int fd, const char *p, size_t n, int sock) {
  while (n > 0) {
    ssize_t w = sock ? send(fd, p, n, MSG_NOSIGNAL) : write(fd, p, n);
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* A connected stream socket to `sa` (its first `len` bytes), with the I/O timeouts; -1 on failure. */
static int connect_unix(const struct sockaddr_un *sa, socklen_t len, int timeout_s) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct timeval tv = {.tv_sec = timeout_s};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, (const struct sockaddr *)sa, len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/*
 * The router's local socket `name`: an abstract AF_UNIX name (sun_path[0] == '\0', then the
 * name). It lives in this network namespace, and the router serves it to root only
 * (SO_PEERCRED). An abstract name is all the bytes the address length covers, NULs included: the
 * exact name is offsetof(sun_path) + 1 + strlen, no trailing NUL; but Node 20 (libuv's
 * uv_pipe_bind) binds the whole sun_path, the name padded with NULs to 107 bytes. Both are tried,
 * exact first (what a later Node binds); a refused connect costs microseconds.
 */
static int router_socket(const char *name, int timeout_s) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  size_t len = strlen(name);
  if (len == 0 || len + 1 > sizeof sa.sun_path) return -1;
  memcpy(sa.sun_path + 1, name, len);
  int fd = connect_unix(&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len), timeout_s);
  if (fd < 0) fd = connect_unix(&sa, (socklen_t)sizeof sa, timeout_s);
  return fd;
}

/* An answer read whole: its status, and its body (NUL-terminated, inside `buf`, which the caller frees). */
struct answer {
  char *buf;
  int status;
  char *body;
  size_t body_len;
};

/*
 * Sends `head` and `body` on a connected `fd` and reads the answer (at most `max` bytes). Returns
 * 0 with `a` filled; -1 when nothing could be sent (the router saw no whole request); -2 when the
 * request went out but no whole answer came back (the router may have acted on it).
 */
static int exchange(int fd, const char *head, size_t head_len, const char *body, size_t body_len, size_t max, struct answer *a) {
  a->buf = NULL;
  if (write_all(fd, head, head_len, 1) != 0 || write_all(fd, body, body_len, 1) != 0) return -1;
  char *buf = malloc(max + 1);
  if (buf == NULL) return -2;
  size_t got = 0, want = SIZE_MAX;
  char *sep = NULL;
  while (got < max && got < want) {
    ssize_t r = read(fd, buf + got, max - got);
    if (r <= 0) break;
    got += (size_t)r;
    buf[got] = '\0';
    if (sep == NULL && (sep = strstr(buf, "\r\n\r\n")) != NULL) {
      const char *cl = strcasestr(buf, "\r\ncontent-length:");
      if (cl == NULL || cl > sep) break; /* the router always sends one */
      want = (size_t)(sep + 4 - buf) + strtoul(cl + 17, NULL, 10);
    }
  }
  if (sep == NULL || got != want || (strncmp(buf, "HTTP/1.1 ", 9) != 0 && strncmp(buf, "HTTP/1.0 ", 9) != 0)) {
    free(buf);
    return -2;
  }
  a->buf = buf;
  a->status = atoi(buf + 9);
  a->body = sep + 4;
  a->body_len = got - (size_t)(sep + 4 - buf);
  return 0;
}

/* `name` beside this executable (its own folder, read from /proc/self/exe) into `out` (PATH_MAX bytes); 0, or -1 when it cannot be found. */
static int beside_self(const char *name, char *out) {
  ssize_t n = readlink("/proc/self/exe", out, PATH_MAX - 1);
  if (n <= 0) return -1;
  out[n] = '\0';
  char *slash = strrchr(out, '/');
  if (slash == NULL || (size_t)(slash + 1 - out) + strlen(name) >= PATH_MAX) return -1;
  strcpy(slash + 1, name);
  return 0;
}

/*
 * POST `path` with a JSON `body` to the router's local socket named by the environment variable
 * `socket_var` (or `fallback_name` when unset or empty), and reads the answer: exchange's results,
 * -1 also when nothing answers on the socket.
 */
static int post_local(const char *socket_var, const char *fallback_name, const char *path, const char *body, size_t body_len, size_t max, int timeout_s, struct answer *a) {
  a->buf = NULL;
  const char *name = getenv(socket_var);
  int fd = router_socket(name == NULL || *name == '\0' ? fallback_name : name, timeout_s);
  if (fd < 0) return -1;
  char head[256];
  int head_len = snprintf(head, sizeof head, "POST %s HTTP/1.1\r\nHost: loom\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", path, body_len);
  int got = head_len > 0 && (size_t)head_len < sizeof head ? exchange(fd, head, (size_t)head_len, body, body_len, max, a) : -1;
  close(fd);
  return got;
}

#endif
