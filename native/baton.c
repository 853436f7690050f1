/*
 * baton's native layer: thin wrappers over Linux syscalls that Node does not
 * expose. No policy lives here (which sockets, which fds, when to spawn); the
 * TypeScript side decides. Every failure throws an Error carrying `errno`
 * and `syscall`; net/native.ts names the errno (`code`) from Node's own table.
 * Portable to glibc 2.28: nothing newer is linked (a test checks with
 * objdump).
 */
#include <node_api.h>

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif
#ifndef SO_DETACH_REUSEPORT_BPF
#define SO_DETACH_REUSEPORT_BPF 68
#endif

#define MAX_PASSED_FDS 250

static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", syscall, strerror(err));
  napi_value message, error, num, sc;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, NULL, message, &error);
  napi_create_int32(env, err, &num);
  napi_set_named_property(env, error, "errno", num);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  napi_set_named_property(env, error, "syscall", sc);
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

#define ARGS(n)                                                                \
  size_t argc = n;                                                             \
  napi_value argv[n];                                                          \
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL)

static int get_i32(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

static napi_value make_i32(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

static napi_value undefined(napi_env env) {
  napi_value r;
  napi_get_undefined(env, &r);
  return r;
}

/* Returns a malloc'd string, or NULL when v is not a string (or no memory). */
static char *get_str(napi_env env, napi_value v) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (s) napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}

/* The named property of an options object, when it is an object that has it. */
static bool opt_get(napi_env env, napi_value obj, const char *key, napi_value *out) {
  bool has = false;
  napi_valuetype t;
  if (napi_typeof(env, obj, &t) != napi_ok || t != napi_object) return false;
  napi_has_named_property(env, obj, key, &has);
  return has && napi_get_named_property(env, obj, key, out) == napi_ok;
}

static int opt_bool(napi_env env, napi_value obj, const char *key, int dflt) {
  napi_value v;
  bool b;
  if (!opt_get(env, obj, key, &v) || napi_get_value_bool(env, v, &b) != napi_ok) return dflt;
  return b;
}

static int opt_i32(napi_env env, napi_value obj, const char *key, int dflt) {
  napi_value v;
  int32_t i;
  if (!opt_get(env, obj, key, &v) || !get_i32(env, v, &i)) return dflt;
  return i;
}

static char *opt_str(napi_env env, napi_value obj, const char *key) {
  napi_value v;
  return opt_get(env, obj, key, &v) ? get_str(env, v) : NULL;
}

static int set_fd_flags(int fd, int cloexec, int nonblock) {
  if (cloexec >= 0) {
    int f = fcntl(fd, F_GETFD);
    if (f < 0) return -1;
    f = cloexec ? (f | FD_CLOEXEC) : (f & ~FD_CLOEXEC);
    if (fcntl(fd, F_SETFD, f) < 0) return -1;
  }
  if (nonblock >= 0) {
    int f = fcntl(fd, F_GETFL);
    if (f < 0) return -1;
    f = nonblock ? (f | O_NONBLOCK) : (f & ~O_NONBLOCK);
    if (fcntl(fd, F_SETFL, f) < 0) return -1;
  }
  return 0;
}

/*
 * openSocket(opts) -> fd
 * opts: { family: 4|6|1 (AF_UNIX), type: "stream"|"dgram", host, port, path,
 *         backlog (listen when >= 0 on stream sockets), reuseAddr, reusePort,
 *         v6only, cloexec, nonblock, passCred, mode (of a unix path) }
 * A unix path starting with "@" is in the abstract namespace. "dgram" and
 * "seqpacket" types are for unix sockets.
 * The mode is set without touching the process-wide umask (other threads
 * create files too): on the socket before bind, which Linux gives the new
 * file (minus the umask), so it is never wider than asked; then exactly,
 * with chmod.
 */
static napi_value open_socket(napi_env env, napi_callback_info info) {
  ARGS(1);
  if (argc < 1) return throw_type(env, "openSocket(options)");
  napi_value o = argv[0];
  int family = opt_i32(env, o, "family", 4);
  char *type_s = opt_str(env, o, "type");
  int type = SOCK_STREAM;
  if (type_s && strcmp(type_s, "dgram") == 0) type = SOCK_DGRAM;
  if (type_s && strcmp(type_s, "seqpacket") == 0) type = SOCK_SEQPACKET;
  free(type_s);
  int backlog = opt_i32(env, o, "backlog", -1);
  int cloexec = opt_bool(env, o, "cloexec", 1);
  int nonblock = opt_bool(env, o, "nonblock", 0);

  union {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
    struct sockaddr_un un;
  } addr;
  socklen_t alen;
  memset(&addr, 0, sizeof addr);
  int af;
  char unix_path[sizeof addr.un.sun_path] = "";
  if (family == 1) {
    char *path = opt_str(env, o, "path");
    if (!path) return throw_type(env, "openSocket: unix sockets need a path");
    if (strlen(path) >= sizeof addr.un.sun_path) {
      free(path);
      return throw_errno(env, "bind", ENAMETOOLONG);
    }
    af = AF_UNIX;
    addr.un.sun_family = AF_UNIX;
    strcpy(addr.un.sun_path, path);
    strcpy(unix_path, path);
    alen = sizeof addr.un;
    if (path[0] == '@') {
      /* abstract namespace: no file, gone with its last fd, per netns */
      addr.un.sun_path[0] = '\0';
      alen = offsetof(struct sockaddr_un, sun_path) + strlen(path);
    }
    free(path);
  } else {
    char *host = opt_str(env, o, "host");
    int port = opt_i32(env, o, "port", 0);
    if (port < 0 || port > 65535) {
      free(host);
      return throw_type(env, "openSocket: port out of range");
    }
    af = family == 6 ? AF_INET6 : AF_INET;
    int ok;
    if (af == AF_INET) {
      addr.in4.sin_family = AF_INET;
      addr.in4.sin_port = htons(port);
      ok = inet_pton(AF_INET, host ? host : "0.0.0.0", &addr.in4.sin_addr);
      alen = sizeof addr.in4;
    } else {
      addr.in6.sin6_family = AF_INET6;
      addr.in6.sin6_port = htons(port);
      ok = inet_pton(AF_INET6, host ? host : "::", &addr.in6.sin6_addr);
      alen = sizeof addr.in6;
    }
    free(host);
    if (ok != 1) return throw_type(env, "openSocket: host must be a numeric address");
  }

  int fd = socket(af, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  int one = 1;
#define FAIL(sc)                                                               \
  do {                                                                         \
    int e = errno;                                                             \
    close(fd);                                                                 \
    return throw_errno(env, sc, e);                                            \
  } while (0)
  if (af != AF_UNIX && opt_bool(env, o, "reuseAddr", 1) &&
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
    FAIL("setsockopt(SO_REUSEADDR)");
  if (af != AF_UNIX && opt_bool(env, o, "reusePort", 0) &&
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
    FAIL("setsockopt(SO_REUSEPORT)");
  if (af == AF_INET6 && opt_bool(env, o, "v6only", 1) &&
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
    FAIL("setsockopt(IPV6_V6ONLY)");
  if (af == AF_UNIX && opt_bool(env, o, "passCred", 0) &&
      setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
    FAIL("setsockopt(SO_PASSCRED)");
  int mode = opt_i32(env, o, "mode", -1);
  int file = af == AF_UNIX && unix_path[0] != '@' && mode >= 0;
  if (file && fchmod(fd, (mode_t)mode) < 0) FAIL("fchmod");
  if (bind(fd, &addr.sa, alen) < 0) FAIL("bind");
  if (file && chmod(unix_path, (mode_t)mode) < 0) {
    int e = errno;
    unlink(unix_path);
    close(fd);
    return throw_errno(env, "chmod", e);
  }
  if (type != SOCK_DGRAM && backlog >= 0 && listen(fd, backlog) < 0) FAIL("listen");
  if (set_fd_flags(fd, cloexec, nonblock) < 0) FAIL("fcntl");
#undef FAIL
  return make_i32(env, fd);
}

/* localAddress(fd) -> { family: 4|6|1, address, port } | { family: 1, path } */
static napi_value local_address(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t fd;
  if (argc < 1 || !get_i32(env, argv[0], &fd)) return throw_type(env, "localAddress(fd)");
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
    return throw_errno(env, "getsockname", errno);
  napi_value r, v;
  napi_create_object(env, &r);
  char buf[INET6_ADDRSTRLEN];
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    napi_set_named_property(env, r, "family", make_i32(env, 4));
    napi_create_string_utf8(env, buf, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, r, "address", v);
    napi_set_named_property(env, r, "port", make_i32(env, ntohs(a->sin_port)));
  } else if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    napi_set_named_property(env, r, "family", make_i32(env, 6));
    napi_create_string_utf8(env, buf, NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, r, "address", v);
    napi_set_named_property(env, r, "port", make_i32(env, ntohs(a->sin6_port)));
  } else if (ss.ss_family == AF_UNIX) {
    struct sockaddr_un *a = (struct sockaddr_un *)&ss;
    size_t n = len > offsetof(struct sockaddr_un, sun_path)
                   ? strnlen(a->sun_path, len - offsetof(struct sockaddr_un, sun_path))
                   : 0;
    napi_set_named_property(env, r, "family", make_i32(env, 1));
    napi_create_string_utf8(env, a->sun_path, n, &v);
    napi_set_named_property(env, r, "path", v);
  } else {
    napi_set_named_property(env, r, "family", make_i32(env, ss.ss_family));
  }
  return r;
}

/* getsockoptInt(fd, level, name) -> int */
static napi_value getsockopt_int(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t fd, level, name;
  if (argc < 3 || !get_i32(env, argv[0], &fd) || !get_i32(env, argv[1], &level) ||
      !get_i32(env, argv[2], &name))
    return throw_type(env, "getsockoptInt(fd, level, name)");
  int v = 0;
  socklen_t len = sizeof v;
  if (getsockopt(fd, level, name, &v, &len) < 0) return throw_errno(env, "getsockopt", errno);
  return make_i32(env, v);
}

/* setsockoptInt(fd, level, name, value) */
static napi_value setsockopt_int(napi_env env, napi_callback_info info) {
  ARGS(4);
  int32_t fd, level, name, value;
  if (argc < 4 || !get_i32(env, argv[0], &fd) || !get_i32(env, argv[1], &level) ||
      !get_i32(env, argv[2], &name) || !get_i32(env, argv[3], &value))
    return throw_type(env, "setsockoptInt(fd, level, name, value)");
  if (setsockopt(fd, level, name, &value, sizeof value) < 0)
    return throw_errno(env, "setsockopt", errno);
  return undefined(env);
}

/* fdFlags(fd, {cloexec?, nonblock?}) -> {cloexec, nonblock} after applying */
static napi_value fd_flags(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd;
  if (argc < 1 || !get_i32(env, argv[0], &fd)) return throw_type(env, "fdFlags(fd, flags?)");
  int cloexec = argc > 1 ? opt_bool(env, argv[1], "cloexec", -1) : -1;
  int nonblock = argc > 1 ? opt_bool(env, argv[1], "nonblock", -1) : -1;
  if (set_fd_flags(fd, cloexec, nonblock) < 0) return throw_errno(env, "fcntl", errno);
  int fdf = fcntl(fd, F_GETFD), flf = fcntl(fd, F_GETFL);
  if (fdf < 0 || flf < 0) return throw_errno(env, "fcntl", errno);
  napi_value r, b;
  napi_create_object(env, &r);
  napi_get_boolean(env, (fdf & FD_CLOEXEC) != 0, &b);
  napi_set_named_property(env, r, "cloexec", b);
  napi_get_boolean(env, (flf & O_NONBLOCK) != 0, &b);
  napi_set_named_property(env, r, "nonblock", b);
  return r;
}

/* dup2(oldfd, newfd) -> newfd (CLOEXEC clear, as dup2 leaves it) */
static napi_value do_dup2(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t a, b;
  if (argc < 2 || !get_i32(env, argv[0], &a) || !get_i32(env, argv[1], &b))
    return throw_type(env, "dup2(oldfd, newfd)");
  if (dup2(a, b) < 0) return throw_errno(env, "dup2", errno);
  return make_i32(env, b);
}

static napi_value close_fd(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t fd;
  if (argc < 1 || !get_i32(env, argv[0], &fd)) return throw_type(env, "closeFd(fd)");
  if (close(fd) < 0 && errno != EINTR) return throw_errno(env, "close", errno);
  return undefined(env);
}

/* flock(fd, "ex"|"sh"|"un", nonblocking) -> true, or false when it would block */
static napi_value do_flock(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t fd;
  if (argc < 2 || !get_i32(env, argv[0], &fd)) return throw_type(env, "flock(fd, op, nb)");
  char *op_s = get_str(env, argv[1]);
  int op = LOCK_EX;
  if (op_s && strcmp(op_s, "sh") == 0) op = LOCK_SH;
  if (op_s && strcmp(op_s, "un") == 0) op = LOCK_UN;
  free(op_s);
  bool nb = false;
  if (argc > 2) napi_get_value_bool(env, argv[2], &nb);
  int r;
  do r = flock(fd, op | (nb ? LOCK_NB : 0));
  while (r < 0 && errno == EINTR);
  napi_value out;
  if (r < 0 && errno == EWOULDBLOCK && nb) {
    napi_get_boolean(env, false, &out);
    return out;
  }
  if (r < 0) return throw_errno(env, "flock", errno);
  napi_get_boolean(env, true, &out);
  return out;
}

/* attachReuseportCbpf(fd, [[code, jt, jf, k], ...]) */
static napi_value attach_cbpf(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd;
  uint32_t n;
  bool is_array = false;
  if (argc < 2 || !get_i32(env, argv[0], &fd)) return throw_type(env, "attachReuseportCbpf(fd, program)");
  napi_is_array(env, argv[1], &is_array);
  if (!is_array) return throw_type(env, "attachReuseportCbpf: program must be an array");
  napi_get_array_length(env, argv[1], &n);
  if (n < 1 || n > BPF_MAXINSNS) return throw_type(env, "attachReuseportCbpf: 1..4096 instructions");
  struct sock_filter *code = calloc(n, sizeof *code);
  if (!code) return throw_errno(env, "calloc", ENOMEM);
  for (uint32_t i = 0; i < n; i++) {
    napi_value insn, f;
    uint32_t v[4] = {0, 0, 0, 0};
    napi_get_element(env, argv[1], i, &insn);
    for (uint32_t j = 0; j < 4; j++) {
      if (napi_get_element(env, insn, j, &f) != napi_ok ||
          napi_get_value_uint32(env, f, &v[j]) != napi_ok) {
        free(code);
        return throw_type(env, "attachReuseportCbpf: each instruction is [code, jt, jf, k]");
      }
    }
    code[i].code = v[0];
    code[i].jt = v[1];
    code[i].jf = v[2];
    code[i].k = v[3];
  }
  struct sock_fprog prog = {.len = n, .filter = code};
  int r = setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog);
  int e = errno;
  free(code);
  if (r < 0) return throw_errno(env, "setsockopt(SO_ATTACH_REUSEPORT_CBPF)", e);
  return undefined(env);
}

static napi_value detach_bpf(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t fd;
  if (argc < 1 || !get_i32(env, argv[0], &fd)) return throw_type(env, "detachReuseportBpf(fd)");
  int dummy = 0;
  if (setsockopt(fd, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &dummy, sizeof dummy) < 0)
    return throw_errno(env, "setsockopt(SO_DETACH_REUSEPORT_BPF)", errno);
  return undefined(env);
}

/* socketPair() -> [fd, fd] (AF_UNIX stream, CLOEXEC) */
static napi_value socket_pair(napi_env env, napi_callback_info info) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return throw_errno(env, "socketpair", errno);
  napi_value r;
  napi_create_array_with_length(env, 2, &r);
  napi_set_element(env, r, 0, make_i32(env, sv[0]));
  napi_set_element(env, r, 1, make_i32(env, sv[1]));
  return r;
}

/* pipe() -> [readFd, writeFd] (CLOEXEC) */
static napi_value do_pipe(napi_env env, napi_callback_info info) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0) return throw_errno(env, "pipe2", errno);
  napi_value r;
  napi_create_array_with_length(env, 2, &r);
  napi_set_element(env, r, 0, make_i32(env, p[0]));
  napi_set_element(env, r, 1, make_i32(env, p[1]));
  return r;
}

/* connectUnix(path, "stream"|"dgram"|"seqpacket") -> fd (CLOEXEC) */
static napi_value connect_unix(napi_env env, napi_callback_info info) {
  ARGS(2);
  char *path = argc > 0 ? get_str(env, argv[0]) : NULL;
  if (!path) return throw_type(env, "connectUnix(path, type?)");
  char *type_s = argc > 1 ? get_str(env, argv[1]) : NULL;
  int type = SOCK_STREAM;
  if (type_s && strcmp(type_s, "dgram") == 0) type = SOCK_DGRAM;
  if (type_s && strcmp(type_s, "seqpacket") == 0) type = SOCK_SEQPACKET;
  free(type_s);
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof a.sun_path) {
    free(path);
    return throw_errno(env, "connect", ENAMETOOLONG);
  }
  strcpy(a.sun_path, path);
  free(path);
  int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  int r;
  do r = connect(fd, (struct sockaddr *)&a, sizeof a);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "connect", e);
  }
  return make_i32(env, fd);
}

/* sendFds(sock, fds[], data string) -> bytes sent */
static napi_value send_fds(napi_env env, napi_callback_info info) {
  ARGS(3);
  int32_t sock;
  bool is_array = false;
  if (argc < 3 || !get_i32(env, argv[0], &sock)) return throw_type(env, "sendFds(sock, fds, data)");
  napi_is_array(env, argv[1], &is_array);
  if (!is_array) return throw_type(env, "sendFds: fds must be an array");
  uint32_t n;
  napi_get_array_length(env, argv[1], &n);
  if (n > MAX_PASSED_FDS) return throw_type(env, "sendFds: too many fds");
  char *data = get_str(env, argv[2]);
  if (!data) return throw_type(env, "sendFds: data must be a string");
  size_t dlen = strlen(data);
  char one = 0;
  struct iovec iov = {.iov_base = dlen ? data : &one, .iov_len = dlen ? dlen : 1};
  size_t space = CMSG_SPACE(sizeof(int) * (n ? n : 1));
  char *cbuf = calloc(1, space);
  if (!cbuf) {
    free(data);
    return throw_errno(env, "calloc", ENOMEM);
  }
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (n > 0) {
    msg.msg_control = cbuf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n);
    int *fds = (int *)CMSG_DATA(c);
    for (uint32_t i = 0; i < n; i++) {
      napi_value v;
      int32_t fd = -1;
      if (napi_get_element(env, argv[1], i, &v) != napi_ok || !get_i32(env, v, &fd) || fd < 0) {
        free(cbuf);
        free(data);
        return throw_type(env, "sendFds: fds must be file descriptor numbers");
      }
      fds[i] = fd;
    }
  }
  ssize_t r;
  do r = sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  int e = errno;
  free(cbuf);
  free(data);
  if (r < 0) return throw_errno(env, "sendmsg", e);
  return make_i32(env, (int32_t)r);
}

/*
 * recvMsg(sock) -> { data, fds, pid, uid, gid } | null when nothing is queued
 * (MSG_DONTWAIT). Received fds are CLOEXEC. pid/uid/gid are present when the
 * socket has SO_PASSCRED (the kernel fills them in; senders cannot forge them).
 * A message cut short (more data or more fds than fit) is an EMSGSIZE error,
 * with every fd it brought closed: a part of a message is never delivered.
 */
static void close_received(struct msghdr *msg) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    int *p = (int *)CMSG_DATA(c);
    for (size_t i = 0; i < k; i++) close(p[i]);
  }
}

static napi_value recv_msg(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t sock;
  if (argc < 1 || !get_i32(env, argv[0], &sock)) return throw_type(env, "recvMsg(sock)");
  char data[4096];
  struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
  size_t space = CMSG_SPACE(sizeof(int) * MAX_PASSED_FDS) + CMSG_SPACE(sizeof(struct ucred));
  char *cbuf = calloc(1, space);
  if (!cbuf) return throw_errno(env, "calloc", ENOMEM);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = space};
  ssize_t r;
  do r = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    int e = errno;
    free(cbuf);
    if (e == EAGAIN || e == EWOULDBLOCK) {
      napi_value nul;
      napi_get_null(env, &nul);
      return nul;
    }
    return throw_errno(env, "recvmsg", e);
  }
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
    close_received(&msg);
    free(cbuf);
    return throw_errno(env, msg.msg_flags & MSG_CTRUNC ? "recvmsg (control data cut short)" : "recvmsg (data cut short)", EMSGSIZE);
  }
  napi_value out, str, fds;
  napi_create_object(env, &out);
  napi_create_string_utf8(env, data, (size_t)r, &str);
  napi_set_named_property(env, out, "data", str);
  napi_create_array(env, &fds);
  uint32_t nf = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET) continue;
    if (c->cmsg_type == SCM_RIGHTS) {
      size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      int *p = (int *)CMSG_DATA(c);
      for (size_t i = 0; i < k; i++) napi_set_element(env, fds, nf++, make_i32(env, p[i]));
    } else if (c->cmsg_type == SCM_CREDENTIALS) {
      struct ucred cr;
      memcpy(&cr, CMSG_DATA(c), sizeof cr);
      napi_set_named_property(env, out, "pid", make_i32(env, cr.pid));
      napi_set_named_property(env, out, "uid", make_i32(env, (int32_t)cr.uid));
      napi_set_named_property(env, out, "gid", make_i32(env, (int32_t)cr.gid));
    }
  }
  napi_set_named_property(env, out, "fds", fds);
  free(cbuf);
  return out;
}

/* sendDatagram(path, data): one datagram to a UNIX datagram socket (sd_notify) */
static napi_value send_datagram(napi_env env, napi_callback_info info) {
  ARGS(2);
  char *path = argc > 0 ? get_str(env, argv[0]) : NULL;
  char *data = argc > 1 ? get_str(env, argv[1]) : NULL;
  if (!path || !data) {
    free(path);
    free(data);
    return throw_type(env, "sendDatagram(path, data)");
  }
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  size_t plen = strlen(path);
  if (plen >= sizeof a.sun_path || plen == 0) {
    free(path);
    free(data);
    return throw_errno(env, "sendto", ENAMETOOLONG);
  }
  memcpy(a.sun_path, path, plen);
  /* systemd convention: a leading '@' names an abstract socket */
  if (path[0] == '@') a.sun_path[0] = 0;
  socklen_t alen = offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '@' ? 0 : 1);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    free(path);
    free(data);
    return throw_errno(env, "socket", errno);
  }
  ssize_t r = sendto(fd, data, strlen(data), MSG_NOSIGNAL, (struct sockaddr *)&a, alen);
  int e = errno;
  close(fd);
  free(path);
  free(data);
  if (r < 0) return throw_errno(env, "sendto", e);
  return undefined(env);
}

/*
 * spawn(file, argv[], envp[], { fds: [[src, target], ...], setsid })
 * -> pid. posix_spawnp from the calling process: signals that Node ignores
 * (SIGPIPE) stay ignored in the child, handled ones revert to default, the
 * mask is emptied. Each src fd lands at its target number with CLOEXEC clear.
 * (No working directory: posix_spawn_file_actions_addchdir_np needs glibc
 * 2.29; process/spawn.ts changes directory through /bin/sh instead.)
 */
static void free_strv(char **v) {
  if (!v) return;
  for (char **p = v; *p; p++) free(*p);
  free(v);
}

static char **get_strv(napi_env env, napi_value arr) {
  bool is_array = false;
  napi_is_array(env, arr, &is_array);
  if (!is_array) return NULL;
  uint32_t n;
  napi_get_array_length(env, arr, &n);
  char **v = calloc(n + 1, sizeof *v);
  if (!v) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    napi_get_element(env, arr, i, &e);
    v[i] = get_str(env, e);
    if (!v[i]) {
      free_strv(v);
      return NULL;
    }
  }
  return v;
}

static napi_value do_spawn(napi_env env, napi_callback_info info) {
  ARGS(4);
  if (argc < 4) return throw_type(env, "spawn(file, argv, envp, options)");
  char *file = get_str(env, argv[0]);
  char **av = get_strv(env, argv[1]);
  char **ev = get_strv(env, argv[2]);
  if (!file || !av || !ev || !av[0]) {
    free(file);
    free_strv(av);
    free_strv(ev);
    return throw_type(env, "spawn: file, argv and envp must be strings");
  }
  napi_value fds_v;
  bool is_array = false;
  uint32_t n = 0;
  if (opt_get(env, argv[3], "fds", &fds_v)) {
    napi_is_array(env, fds_v, &is_array);
    if (is_array) napi_get_array_length(env, fds_v, &n);
  }
  int *src = calloc(n + 1, sizeof(int)), *dst = calloc(n + 1, sizeof(int));
  const char *bad = NULL;
  int bad_errno = 0;
  if (!src || !dst) bad_errno = ENOMEM;
  int scratch = 0;
  for (uint32_t i = 0; i < n && !bad && !bad_errno; i++) {
    napi_value pair, v;
    if (napi_get_element(env, fds_v, i, &pair) != napi_ok || napi_get_element(env, pair, 0, &v) != napi_ok ||
        !get_i32(env, v, &src[i]) || napi_get_element(env, pair, 1, &v) != napi_ok || !get_i32(env, v, &dst[i]) ||
        src[i] < 0 || dst[i] < 0)
      bad = "spawn: options.fds must be [source fd, target fd] pairs";
    else {
      if (src[i] >= scratch) scratch = src[i] + 1;
      if (dst[i] >= scratch) scratch = dst[i] + 1;
    }
  }
  if (bad || bad_errno) {
    free(src);
    free(dst);
    free(file);
    free_strv(av);
    free_strv(ev);
    return bad ? throw_type(env, bad) : throw_errno(env, "calloc", bad_errno);
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  /* Two passes through scratch numbers above every src and target, so a
     target that equals another mapping's src cannot clobber it. */
  for (uint32_t i = 0; i < n; i++) posix_spawn_file_actions_adddup2(&fa, src[i], scratch + i);
  for (uint32_t i = 0; i < n; i++) {
    posix_spawn_file_actions_adddup2(&fa, scratch + i, dst[i]);
    posix_spawn_file_actions_addclose(&fa, scratch + i);
  }

  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (opt_bool(env, argv[3], "setsid", 0)) flags |= POSIX_SPAWN_SETSID;
  sigset_t empty, def;
  sigemptyset(&empty);
  sigfillset(&def);
  sigdelset(&def, SIGPIPE);
  posix_spawnattr_setsigmask(&at, &empty);
  posix_spawnattr_setsigdefault(&at, &def);
  posix_spawnattr_setflags(&at, flags);

  pid_t pid;
  int r = posix_spawnp(&pid, file, &fa, &at, av, ev);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  free(src);
  free(dst);
  free(file);
  free_strv(av);
  free_strv(ev);
  if (r != 0) return throw_errno(env, "posix_spawn", r);
  return make_i32(env, pid);
}

/* waitpid(pid, nohang) -> [pid, rawStatus] | null (nothing to reap, or ECHILD) */
static napi_value do_waitpid(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t pid;
  bool nohang = true;
  if (argc < 1 || !get_i32(env, argv[0], &pid)) return throw_type(env, "waitpid(pid, nohang)");
  if (argc > 1) napi_get_value_bool(env, argv[1], &nohang);
  int status = 0;
  pid_t r;
  do r = waitpid(pid, &status, nohang ? WNOHANG : 0);
  while (r < 0 && errno == EINTR);
  if (r < 0 && errno != ECHILD) return throw_errno(env, "waitpid", errno);
  if (r <= 0) {
    napi_value nul;
    napi_get_null(env, &nul);
    return nul;
  }
  napi_value out;
  napi_create_array_with_length(env, 2, &out);
  napi_set_element(env, out, 0, make_i32(env, r));
  napi_set_element(env, out, 1, make_i32(env, status));
  return out;
}

/* acceptConn(fd) -> fd (CLOEXEC, blocking) | null when none is waiting */
static napi_value accept_conn(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t fd;
  if (argc < 1 || !get_i32(env, argv[0], &fd)) return throw_type(env, "acceptConn(fd)");
  int c;
  do c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
  while (c < 0 && errno == EINTR);
  if (c < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    napi_value nul;
    napi_get_null(env, &nul);
    return nul;
  }
  if (c < 0) return throw_errno(env, "accept4", errno);
  return make_i32(env, c);
}

/* peerCred(fd) -> { pid, uid, gid } of the process at the other end (SO_PEERCRED) */
static napi_value peer_cred(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t fd;
  if (argc < 1 || !get_i32(env, argv[0], &fd)) return throw_type(env, "peerCred(fd)");
  struct ucred cr;
  socklen_t len = sizeof cr;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) return throw_errno(env, "getsockopt(SO_PEERCRED)", errno);
  napi_value out;
  napi_create_object(env, &out);
  napi_set_named_property(env, out, "pid", make_i32(env, cr.pid));
  napi_set_named_property(env, out, "uid", make_i32(env, (int32_t)cr.uid));
  napi_set_named_property(env, out, "gid", make_i32(env, (int32_t)cr.gid));
  return out;
}

/* shutdownFd(fd, "rd"|"wr"|"rdwr"): on a listener, takes it out of its
   reuseport group for every process holding it at once */
static napi_value shutdown_fd(napi_env env, napi_callback_info info) {
  ARGS(2);
  int32_t fd;
  if (argc < 1 || !get_i32(env, argv[0], &fd)) return throw_type(env, "shutdownFd(fd, how)");
  char *how_s = argc > 1 ? get_str(env, argv[1]) : NULL;
  int how = SHUT_RD;
  if (how_s && strcmp(how_s, "wr") == 0) how = SHUT_WR;
  if (how_s && strcmp(how_s, "rdwr") == 0) how = SHUT_RDWR;
  free(how_s);
  if (shutdown(fd, how) < 0) return throw_errno(env, "shutdown", errno);
  return undefined(env);
}

/* tcpListenQueue(fd) -> connections waiting in a listener's accept queue */
static napi_value tcp_listen_queue(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t fd;
  if (argc < 1 || !get_i32(env, argv[0], &fd)) return throw_type(env, "tcpListenQueue(fd)");
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
    return throw_errno(env, "getsockopt(TCP_INFO)", errno);
  return make_i32(env, (int32_t)ti.tcpi_unacked);
}

/* unreadBytes(fd) -> bytes received on a connected socket and not yet read */
static napi_value unread_bytes(napi_env env, napi_callback_info info) {
  ARGS(1);
  int32_t fd;
  if (argc < 1 || !get_i32(env, argv[0], &fd)) return throw_type(env, "unreadBytes(fd)");
  int n = 0;
  if (ioctl(fd, FIONREAD, &n) < 0) return throw_errno(env, "ioctl(FIONREAD)", errno);
  return make_i32(env, n);
}

/* The TCP sockets in `states` (a mask of 1 << TCP_*) whose local port is
   `port` (every port: 0) in this network namespace, from sock_diag, as
   [{ inode, address, port }]. The kernel walks only the tables those states
   live in, so this stays cheap when /proc/net/tcp holds a hundred thousand
   TIME_WAIT lines. */
static napi_value tcp_dump(napi_env env, napi_callback_info info, const char *usage, uint32_t states) {
  ARGS(2);
  int32_t family, port;
  if (argc < 2 || !get_i32(env, argv[0], &family) || !get_i32(env, argv[1], &port))
    return throw_type(env, usage);
  int af = family == 6 ? AF_INET6 : AF_INET;
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return throw_errno(env, "socket(NETLINK_SOCK_DIAG)", errno);
  struct {
    struct nlmsghdr nlh;
    struct inet_diag_req_v2 r;
  } req;
  memset(&req, 0, sizeof req);
  req.nlh.nlmsg_len = sizeof req;
  req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.r.sdiag_family = af;
  req.r.sdiag_protocol = IPPROTO_TCP;
  req.r.idiag_states = states;
  if (send(fd, &req, sizeof req, 0) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "send(sock_diag)", e);
  }
  napi_value out;
  napi_create_array(env, &out);
  uint32_t count = 0;
  char buf[32768];
  for (;;) {
    ssize_t got = recv(fd, buf, sizeof buf, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      /* 0: the kernel closed the dump without its NLMSG_DONE */
      int e = got < 0 ? errno : EPROTO;
      close(fd);
      return throw_errno(env, "recv(sock_diag)", e);
    }
    int len = (int)got;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_DONE) {
        close(fd);
        return out;
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        int e = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
        close(fd);
        return throw_errno(env, "sock_diag", e);
      }
      struct inet_diag_msg *m = NLMSG_DATA(h);
      int sport = ntohs(m->id.idiag_sport);
      if (port != 0 && sport != port) continue;
      char addr[INET6_ADDRSTRLEN] = "";
      inet_ntop(m->idiag_family, m->id.idiag_src, addr, sizeof addr);
      napi_value o, inode, a, p;
      napi_create_object(env, &o);
      napi_create_uint32(env, m->idiag_inode, &inode);
      napi_create_string_utf8(env, addr, NAPI_AUTO_LENGTH, &a);
      napi_create_int32(env, sport, &p);
      napi_set_named_property(env, o, "inode", inode);
      napi_set_named_property(env, o, "address", a);
      napi_set_named_property(env, o, "port", p);
      napi_set_element(env, out, count++, o);
    }
  }
}

/* tcpListeners(family 4|6, port): the listening sockets. */
static napi_value tcp_listeners(napi_env env, napi_callback_info info) {
  return tcp_dump(env, info, "tcpListeners(family, port)", 1 << TCP_LISTEN);
}

/* tcpConnections(family 4|6, port): connected sockets (accepted ones have
   the listener's port as theirs; those still in its accept queue have
   inode 0), not TIME_WAIT nor those still in a handshake. */
static napi_value tcp_connections(napi_env env, napi_callback_info info) {
  uint32_t states = 1 << TCP_ESTABLISHED | 1 << TCP_FIN_WAIT1 | 1 << TCP_FIN_WAIT2 | 1 << TCP_CLOSE_WAIT |
                    1 << TCP_LAST_ACK | 1 << TCP_CLOSING;
  return tcp_dump(env, info, "tcpConnections(family, port)", states);
}

#define EXPORT(name, fn)                                                       \
  do {                                                                         \
    napi_value f;                                                              \
    napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f);           \
    napi_set_named_property(env, exports, name, f);                           \
  } while (0)

static napi_value init(napi_env env, napi_value exports) {
  EXPORT("openSocket", open_socket);
  EXPORT("localAddress", local_address);
  EXPORT("getsockoptInt", getsockopt_int);
  EXPORT("setsockoptInt", setsockopt_int);
  EXPORT("fdFlags", fd_flags);
  EXPORT("dup2", do_dup2);
  EXPORT("closeFd", close_fd);
  EXPORT("flock", do_flock);
  EXPORT("attachReuseportCbpf", attach_cbpf);
  EXPORT("detachReuseportBpf", detach_bpf);
  EXPORT("socketPair", socket_pair);
  EXPORT("pipe", do_pipe);
  EXPORT("connectUnix", connect_unix);
  EXPORT("sendFds", send_fds);
  EXPORT("recvMsg", recv_msg);
  EXPORT("sendDatagram", send_datagram);
  EXPORT("spawn", do_spawn);
  EXPORT("waitpid", do_waitpid);
  EXPORT("tcpListenQueue", tcp_listen_queue);
  EXPORT("acceptConn", accept_conn);
  EXPORT("shutdownFd", shutdown_fd);
  EXPORT("peerCred", peer_cred);
  EXPORT("tcpListeners", tcp_listeners);
  EXPORT("tcpConnections", tcp_connections);
  EXPORT("unreadBytes", unread_bytes);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
