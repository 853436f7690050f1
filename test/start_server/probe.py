# A worker that reports what it inherited from start_server as JSON, then
# waits for a signal. Started as: sh -c 'grep SigIgn ... ; exec python3 probe.py OUT'
import fcntl, json, os, signal, socket, sys

out = sys.argv[1]
rep = {
    "port": os.environ.get("SERVER_STARTER_PORT"),
    "generation": os.environ.get("SERVER_STARTER_GENERATION"),
    "cwd": os.getcwd(),
    "env": {k: v for k, v in os.environ.items() if k.startswith("PROBE_")},
    "fds": {},
}
for entry in filter(None, rep["port"].split(";")):
    key, fd = entry.rsplit("=", 1)
    fd = int(fd)
    s = socket.socket(fileno=os.dup(fd))
    rep["fds"][key] = {
        "fd": fd,
        "nonblock": bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK),
        "cloexec": bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC),
        "type": s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE),
        "reuseaddr": s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR),
        "family": s.family,
        "v6only": s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) if s.family == socket.AF_INET6 else None,
    }
    s.detach()
tmp = out + ".tmp"
with open(tmp, "w") as f:
    json.dump(rep, f)
os.rename(tmp, out)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    signal.pause()
