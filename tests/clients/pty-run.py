#!/usr/bin/env python3
"""Runs a command on a new pty, types INPUT (after DELAY seconds), prints
what the terminal showed and exits with the command's status.
usage: pty-run.py DELAY INPUT CMD [ARG...]   (INPUT: \\r for Enter)"""
import os, pty, select, sys, time

delay, data, cmd = float(sys.argv[1]), sys.argv[2].replace("\\r", "\r").encode(), sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
out, sent, start = b"", False, time.time()
while True:
    if not sent and time.time() - start >= delay:
        os.write(fd, data)
        sent = True
    r, _, _ = select.select([fd], [], [], 0.1)
    if r:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    if time.time() - start > 60:
        os.kill(pid, 9)
        break
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace").replace("\r", ""))
sys.exit(os.waitstatus_to_exitcode(status))
