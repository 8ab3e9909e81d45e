/*
 * loom: the `loom` executable's native front (bin/loom links here; docs/BENCHMARKS.md, "Issue 14").
 *
 * A Node start alone is ~70 ms on this kind of machine, most of what `loom run` took. The router
 * already runs the CLI's code (it is the same process image: `loom launch --foreground`), so for
 * the hot commands this executable hands the whole command line to the router of this network
 * namespace, `POST /cli/exec` on its local socket, where src/cli/in-process.ts runs it with the
 * same commander program and the same client a Node CLI would, and prints what it printed and
 * exits with its code. It holds no CLI logic.
 *
 * Contracts:
 * - Forwarded: `run`, `rm` and `ps`, unless a word before `--` asks for help (`-h`, `--help`: the
 *   help's width is the terminal's) or names another API (`--api-socket`, `--http-addr`; or
 *   LOOM_HTTP_ADDR is set), or LOOM_CLI_FORWARD=0. The request carries argv after `loom`, the
 *   LOOM_* environment variables (what the commands read) and this build's id (BUILD_ID of
 *   src/core/build-id.ts, compiled in by scripts/build-native.mjs).
 * - Answer `200 text/plain`: `exit <code> <stdout bytes> <stderr bytes>\n` then both outputs, or
 *   `fallback <reason>\n` (another build, or a command the router does not run).
 * - Not run by the router (no router on the socket, another answer than 200, a fallback): the
 *   Node CLI runs the command, dist/src/cli/loom.cjs found from this executable's own path, with
 *   the same arguments and environment; it gives the usual error when the router is down. Node
 *   starts without NODE_EXTRA_CA_CERTS (read at start-up, ~40 ms; the CLI opens no TLS
 *   connection) and gets its value in LOOM_NODE_EXTRA_CA_CERTS (src/cli/extra-ca-certs.ts).
 * - Sent but no whole answer (the router may have acted: a container may have started): never
 *   run again; an error on stderr, exit 1.
 * Only libc; every buffer is sized before it is filled and bounded.
 */
#include "loom-http.h"

#include <errno.h>
#include <limits.h>

#ifndef LOOM_BUILD_ID
#define LOOM_BUILD_ID "unbuilt"
#endif
#define MAX_ARGS 4096
#define MAX_ANSWER (16 * 1024 * 1024)
#define IO_TIMEOUT_S 120
#define DEFAULT_SOCKET "loom/api"

extern char **environ;

static const char *const FORWARDED[] = {"run", "rm", "ps"};

static int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* Whether the router may run this command line (see Contracts). */
static int forwardable(int argc, char **argv) {
  if (argc < 2 || argc > MAX_ARGS) return 0;
  const char *off = getenv("LOOM_CLI_FORWARD");
  const char *http = getenv("LOOM_HTTP_ADDR");
  if ((off != NULL && strcmp(off, "0") == 0) || (http != NULL && *http != '\0')) return 0;
  int known = 0;
  for (size_t i = 0; i < sizeof FORWARDED / sizeof FORWARDED[0]; i++) known |= strcmp(argv[1], FORWARDED[i]) == 0;
  if (!known) return 0;
  for (int i = 2; i < argc && strcmp(argv[i], "--") != 0; i++) {
    const char *w = argv[i];
    if (strcmp(w, "-h") == 0 || strcmp(w, "--help") == 0 || starts_with(w, "--api-socket") || starts_with(w, "--http-addr")) return 0;
  }
  return 1;
}

/* {"build":"ID","argv":["run",...],"env":{"LOOM_X":"..."}}: this build, the words after `loom`, the LOOM_* variables. */
static char *build_body(int argc, char **argv, size_t *body_len) {
  size_t len = sizeof "{\"build\":\"\",\"argv\":[],\"env\":{}}" + sizeof LOOM_BUILD_ID;
  for (int i = 1; i < argc; i++) len += escaped_len((const unsigned char *)argv[i], strlen(argv[i])) + 3;
  for (char **e = environ; *e != NULL; e++)
    if (starts_with(*e, "LOOM_") && strchr(*e, '=') != NULL) len += escaped_len((const unsigned char *)*e, strlen(*e)) + 6;
  char *body = malloc(len);
  if (body == NULL) return NULL;
  char *p = body;
  p += sprintf(p, "{\"build\":\"%s\",\"argv\":[", LOOM_BUILD_ID);
  for (int i = 1; i < argc; i++) {
    p += sprintf(p, "%s\"", i > 1 ? "," : "");
    p = escape_into(p, (const unsigned char *)argv[i], strlen(argv[i]));
    *p++ = '"';
  }
  p += sprintf(p, "],\"env\":{");
  int first = 1;
  for (char **e = environ; *e != NULL; e++) {
    const char *eq = strchr(*e, '=');
    if (!starts_with(*e, "LOOM_") || eq == NULL) continue;
    p += sprintf(p, "%s\"", first ? "" : ",");
    p = escape_into(p, (const unsigned char *)*e, (size_t)(eq - *e));
    p += sprintf(p, "\":\"");
    p = escape_into(p, (const unsigned char *)eq + 1, strlen(eq + 1));
    *p++ = '"';
    first = 0;
  }
  p += sprintf(p, "}}");
  *body_len = (size_t)(p - body);
  return body;
}

/* Reads a decimal size at *p (advancing it); -1 when there is none. */
static long long take_size(char **p) {
  char *end = NULL;
  errno = 0;
  long long v = strtoll(*p, &end, 10);
  if (end == *p || errno != 0 || v < 0) return -1;
  *p = end;
  return v;
}

/* The router runs the command: 0 and *code set (its output printed); -1 to run it here; -2 cut short (reported). */
static int call_router(int argc, char **argv, int *code) {
  size_t body_len;
  char *body = build_body(argc, argv, &body_len);
  if (body == NULL) return -1;
  struct answer a;
  int got = post_local("LOOM_API_SOCKET", DEFAULT_SOCKET, "/cli/exec", body, body_len, MAX_ANSWER, IO_TIMEOUT_S, &a);
  free(body);
  if (got == -1) return -1;
  /* Anything but 200 was answered before the command ran (refused, another build's router without the route). */
  if (got == 0 && a.status != 200) {
    free(a.buf);
    return -1;
  }
  if (got == 0 && starts_with(a.body, "fallback ")) {
    free(a.buf);
    return -1;
  }
  char *p = got == 0 && starts_with(a.body, "exit ") ? a.body + 5 : NULL;
  long long exit_code = -1, out_len = -1, err_len = -1;
  if (p != NULL && (exit_code = take_size(&p)) >= 0 && *p == ' ' && (++p, out_len = take_size(&p)) >= 0 && *p == ' ' && (++p, err_len = take_size(&p)) >= 0 && *p == '\n' && exit_code <= 255 &&
      (size_t)(p + 1 - a.body) + (size_t)out_len + (size_t)err_len == a.body_len) {
    int printed = write_all(1, p + 1, (size_t)out_len, 0) == 0;
    int said = write_all(2, p + 1 + out_len, (size_t)err_len, 0) == 0;
    free(a.buf);
    *code = printed && said ? (int)exit_code : 1;
    return 0;
  }
  free(a.buf);
  static const char cut[] = "loom: ERR_PROTOCOL: the router's answer to this command was cut short or malformed; it may have run (see `loom ps`)\n";
  write_all(2, cut, sizeof cut - 1, 0);
  return -2;
}

/* Runs the Node CLI (dist/src/cli/loom.cjs, from this executable's own path) with argv; returns only on failure. */
static void run_node_cli(int argc, char **argv) {
  char self[PATH_MAX];
  if (beside_self("../src/cli/loom.cjs", self) != 0) return;
  const char *ca = getenv("NODE_EXTRA_CA_CERTS");
  if (setenv("LOOM_NODE_EXTRA_CA_CERTS", ca == NULL ? "" : ca, 1) != 0 || unsetenv("NODE_EXTRA_CA_CERTS") != 0) return;
  char **args = calloc((size_t)argc + 2, sizeof *args);
  if (args == NULL) return;
  args[0] = "node";
  args[1] = self;
  for (int i = 1; i < argc; i++) args[i + 1] = argv[i];
  execvp("node", args);
}

int main(int argc, char **argv) {
  if (forwardable(argc, argv)) {
    int code;
    int r = call_router(argc, argv, &code);
    if (r == 0) return code;
    if (r == -2) return 1;
  }
  run_node_cli(argc, argv);
  fprintf(stderr, "loom: ERR_NOT_FOUND: cannot start the Node CLI (node on the PATH, dist/src/cli/loom.cjs beside this executable): %s\n", strerror(errno));
  return 1;
}
