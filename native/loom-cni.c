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
#include "loom-http.h"

#include <limits.h>
#include <sys/mman.h>

#define MAX_STDIN (1024 * 1024)
#define MAX_ANSWER (8 * 1024 * 1024)
#define IO_TIMEOUT_S 120
#define DEFAULT_SOCKET "loom/api"

extern char **environ;

static const char *const VARS[] = {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"};
#define NVARS (sizeof VARS / sizeof VARS[0])

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

/* One call to the router. 0 and *code set when it answered `exit <n>` (stdout then printed); -1 to fall back. */
static int call_router(const char *in, size_t in_len, int *code) {
  size_t body_len;
  char *body = build_body(in, in_len, &body_len);
  if (body == NULL) return -1;
  struct answer a;
  /* Any failure falls back: ADD and DEL are idempotent, so the Node plugin may run the call again. */
  int got = post_local("LOOM_CNI_SOCKET", DEFAULT_SOCKET, "/cni/exec", body, body_len, MAX_ANSWER, IO_TIMEOUT_S, &a);
  free(body);
  if (got != 0) return -1;
  char *nl = a.status == 200 ? memchr(a.body, '\n', a.body_len) : NULL;
  char *end = NULL;
  long exit_code = nl != NULL && strncmp(a.body, "exit ", 5) == 0 ? strtol(a.body + 5, &end, 10) : -1;
  if (end != nl || exit_code < 0 || exit_code > 255) {
    free(a.buf);
    return -1;
  }
  int printed = write_all(1, nl + 1, a.body_len - (size_t)(nl + 1 - a.body), 0);
  free(a.buf);
  *code = printed == 0 ? (int)exit_code : 1;
  return 0;
}

/* Runs loom-cni-node beside this executable with `in` (and the rest of fd 0) as its stdin; returns only on failure. */
static void run_node_plugin(const char *in, size_t in_len, int more) {
  char self[PATH_MAX];
  if (beside_self("loom-cni-node", self) != 0) return;
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
