/*
 * loom-cni: the native CNI plugin executable (the fast path; docs/CNI.md, "The native shim").
 *
 * A Node process start alone costs more than the whole CNI budget, so the executable a runtime
 * starts for every pod is this: it forwards one CNI call (the CNI_* variables and stdin) to the
 * host's Loom router, `POST /cni/exec` on its local socket, where src/cni/exec.ts runs the TypeScript plugin in
 * process, and prints the plugin's stdout and exits with its code. It holds no CNI logic.
 *
 * Contracts:
 * - The answer is `200 text/plain`, body `exit <n>\n<stdout>` or `fallback <reason>\n`.
 * - Anything else (no router, a non-200, a short or odd answer, stdin over 1 MiB, a bad
 *   LOOM_CNI_SOCKET) runs the Node plugin `loom-cni-node` beside this executable, with the same
 *   environment and the same stdin (a memfd as fd 0): it gives the spec's error (router down:
 *   code 11) or does what the router will not (a delegated IPAM plugin). Re-running a call is
 *   safe: ADD and DEL are idempotent by the plugin's contract.
 * - If that cannot be executed either: a CNI error object (code 11) on stdout, exit 1.
 * - Router address: the abstract unix socket "loom/api" of this network namespace (the router's
 *   local socket, root only), or LOOM_CNI_SOCKET=NAME (tests).
 * Only libc; every buffer is sized before it is filled and bounded.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_STDIN (1024 * 1024)
#define MAX_ANSWER (8 * 1024 * 1024)
#define IO_TIMEOUT_S 120
#define DEFAULT_SOCKET "loom/api"

extern char **environ;

static const char *const VARS[] = {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"};
#define NVARS (sizeof VARS / sizeof VARS[0])

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

/* The request body: {"env":{"CNI_X":"..."},"stdin":"..."} (unset variables left out). */
static char *build_body(const char *in, size_t in_len, size_t *body_len) {
  size_t len = sizeof "{\"env\":{},\"stdin\":\"\"}";
  for (size_t i = 0; i < NVARS; i++) {
    const char *v = getenv(VARS[i]);
    if (v != NULL) len += strlen(VARS[i]) + escaped_len((const unsigned char *)v, strlen(v)) + 6;
  }
  len += escaped_len((const unsigned char *)in, in_len);
  char *body = malloc(len);
  if (body == NULL) return NULL;
  char *p = body;
  p += sprintf(p, "{\"env\":{");
  int first = 1;
  for (size_t i = 0; i < NVARS; i++) {
    const char *v = getenv(VARS[i]);
    if (v == NULL) continue;
    p += sprintf(p, "%s\"%s\":\"", first ? "" : ",", VARS[i]);
    p = escape_into(p, (const unsigned char *)v, strlen(v));
    *p++ = '"';
    first = 0;
  }
  p += sprintf(p, "},\"stdin\":\"");
  p = escape_into(p, (const unsigned char *)in, in_len);
  p += sprintf(p, "\"}");
  *body_len = (size_t)(p - body);
  return body;
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
static int connect_unix(const struct sockaddr_un *sa, socklen_t len) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, (const struct sockaddr *)sa, len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/*
 * The router's local socket: an abstract AF_UNIX name (sun_path[0] == '\0', then the name). It
 * lives in this network namespace, where the runtime runs us, and the router serves it to root only
 * (SO_PEERCRED). An abstract name is all the bytes the address length covers, NULs included: the
 * exact name is offsetof(sun_path) + 1 + strlen, no trailing NUL; but Node 20 (libuv's
 * uv_pipe_bind) binds the whole sun_path, the name padded with NULs to 107 bytes. Both are tried,
 * exact first (what a later Node binds); a refused connect costs microseconds.
 */
static int router_socket(void) {
  const char *name = getenv("LOOM_CNI_SOCKET");
  if (name == NULL || *name == '\0') name = DEFAULT_SOCKET;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  size_t len = strlen(name);
  if (len + 1 > sizeof sa.sun_path) return -1;
  memcpy(sa.sun_path + 1, name, len);
  int fd = connect_unix(&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len));
  if (fd < 0) fd = connect_unix(&sa, (socklen_t)sizeof sa);
  return fd;
}

/* One call to the router. 0 and *code set when it answered `exit <n>` (stdout then printed); -1 to fall back. */
static int call_router(const char *in, size_t in_len, int *code) {
  size_t body_len;
  char *body = build_body(in, in_len, &body_len);
  if (body == NULL) return -1;
  int fd = router_socket();
  char head[160];
  int head_len = snprintf(head, sizeof head, "POST /cni/exec HTTP/1.1\r\nHost: loom\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", body_len);
  int sent = fd >= 0 && write_all(fd, head, (size_t)head_len, 1) == 0 && write_all(fd, body, body_len, 1) == 0;
  free(body);
  if (!sent) {
    if (fd >= 0) close(fd);
    return -1;
  }
  char *ans = malloc(MAX_ANSWER + 1);
  size_t got = 0, want = SIZE_MAX;
  char *sep = NULL;
  while (ans != NULL && got < MAX_ANSWER && got < want) {
    ssize_t r = read(fd, ans + got, MAX_ANSWER - got);
    if (r <= 0) break;
    got += (size_t)r;
    ans[got] = '\0';
    if (sep == NULL && (sep = strstr(ans, "\r\n\r\n")) != NULL) {
      const char *cl = strcasestr(ans, "\r\ncontent-length:");
      if (cl == NULL || cl > sep) break; /* the router always sends one */
      want = (size_t)(sep + 4 - ans) + strtoul(cl + 17, NULL, 10);
    }
  }
  close(fd);
  int ok = ans != NULL && sep != NULL && got == want && (strncmp(ans, "HTTP/1.1 200 ", 13) == 0 || strncmp(ans, "HTTP/1.0 200 ", 13) == 0);
  char *text = ok ? sep + 4 : NULL;
  char *nl = ok ? memchr(text, '\n', got - (size_t)(text - ans)) : NULL;
  char *end = NULL;
  long exit_code = nl != NULL && strncmp(text, "exit ", 5) == 0 ? strtol(text + 5, &end, 10) : -1;
  if (end != nl || exit_code < 0 || exit_code > 255) {
    free(ans);
    return -1;
  }
  int printed = write_all(1, nl + 1, got - (size_t)(nl + 1 - ans), 0);
  free(ans);
  *code = printed == 0 ? (int)exit_code : 1;
  return 0;
}

/* Runs loom-cni-node beside this executable with `in` (and the rest of fd 0) as its stdin; returns only on failure. */
static void run_node_plugin(const char *in, size_t in_len, int more) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 32);
  if (n <= 0) return;
  self[n] = '\0';
  char *slash = strrchr(self, '/');
  if (slash == NULL) return;
  strcpy(slash + 1, "loom-cni-node");
  int fd = memfd_create("loom-cni-stdin", 0);
  if (fd < 0 || write_all(fd, in, in_len, 0) != 0) return;
  char chunk[65536];
  ssize_t r;
  while (more && (r = read(0, chunk, sizeof chunk)) > 0)
    if (write_all(fd, chunk, (size_t)r, 0) != 0) return;
  if (lseek(fd, 0, SEEK_SET) != 0 || dup2(fd, 0) != 0) return;
  close(fd);
  char *argv[] = {self, NULL};
  execve(self, argv, environ);
}

int main(void) {
  char *in = malloc(MAX_STDIN + 1);
  size_t in_len = 0;
  ssize_t r = 1;
  while (in != NULL && in_len <= MAX_STDIN && (r = read(0, in + in_len, MAX_STDIN + 1 - in_len)) > 0) in_len += (size_t)r;
  int code;
  /* A stdin over the limit (or unreadable) is the Node plugin's to judge: it reads all of it. */
  if (in != NULL && in_len <= MAX_STDIN && r == 0 && call_router(in, in_len, &code) == 0) return code;
  run_node_plugin(in == NULL ? "" : in, in == NULL ? 0 : in_len, in_len > MAX_STDIN);
  static const char err[] = "{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"Loom router not reachable and loom-cni-node missing\"}\n";
  write_all(1, err, sizeof err - 1, 0);
  return 1;
}
