"""What the bench scripts share: running a command, timing one."""
import subprocess, sys, time


def sh(*cmd, **kw):
    subprocess.run(cmd, check=True, **kw)


def timed(cmd):
    """Seconds `cmd` took; exits naming it if it failed."""
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.decode(errors='replace')}")
    return time.perf_counter() - t
