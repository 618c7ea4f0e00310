//! CVE-2019-5736: a container process must not be able to write berth's
//! executable.
//!
//! `create`, `run` and `exec` leave a berth process inside the container
//! until its execve(2), and a container program whose interpreter is
//! `/proc/self/exe` even runs berth's binary there. Through
//! `/proc/<pid>/exe` the container can then open the binary, and once the
//! process has exited (no more ETXTBSY) write to it: the host's next berth
//! call would run the attacker's code.
//!
//! Defence: before those commands do anything, berth re-executes itself
//! from a read-only bind mount of its own binary. The mount is detached
//! (`open_tree(OPEN_TREE_CLONE)`, made read-only with `mount_setattr`): it
//! appears in no mount table, and any open of `/proc/<pid>/exe` for
//! writing fails with EROFS. This costs one execve(2), not a copy of the
//! binary (the fallback, for kernels without the new mount API, is a
//! sealed memfd copy). A binary that already runs from a read-only mount
//! (or sealed memfd) is not re-executed.
//!
//! The binary does it from its ELF entry point, before the C library
//! starts ([`exec_from_ro_view`], raw system calls only): the first
//! process then pays neither glibc's start-up nor the relocation of its
//! tables, which the re-executed process pays again anyway.

use crate::error::{Error, Result, SysCtx};
use crate::fs::newmount::MOUNT_ATTR_RDONLY;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

/// Re-executes berth (same argv and environment) from a read-only view of
/// its binary unless it already runs from one; with `try_view` false (the
/// entry point already tried [`exec_from_ro_view`] and it failed), from a
/// sealed copy at once. Returns only on failure, or at once when already
/// protected. (Not inlined: it runs only where the entry point did not
/// protect berth, and its frame would sit in every caller's.)
#[inline(never)]
pub fn ensure_protected(try_view: bool) -> Result<()> {
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(std::os::unix::ffi::OsStringExt::into_vec(a)))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::Other("argument with a NUL byte".into()))?;
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut b = std::os::unix::ffi::OsStringExt::into_vec(k);
            b.push(b'=');
            b.extend(std::os::unix::ffi::OsStringExt::into_vec(v));
            CString::new(b)
        })
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::Other("environment with a NUL byte".into()))?;
    let ptrs = |v: &[CString]| -> Vec<*const libc::c_char> {
        v.iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect()
    };
    let (argv, envp) = (ptrs(&args), ptrs(&env));
    // SAFETY: argv and envp are NULL-terminated arrays of NUL-terminated
    // strings (args and env), alive across the call.
    if try_view && unsafe { exec_from_ro_view(argv.as_ptr(), envp.as_ptr()) } {
        return Ok(());
    }
    // The new mount API is missing (or refused): a sealed copy instead.
    let exe = std::fs::File::open("/proc/self/exe")
        .map_err(|e| Error::io("open", "/proc/self/exe", e))?;
    let fd = sealed_copy(&exe)?;
    let e = nix::unistd::fexecve(&fd, &args, &env).unwrap_err();
    Err(Error::sys("re-execute berth from a read-only view", e))
}

/// A raw system call with up to five arguments; the result or -errno.
///
/// # Safety
/// The arguments must be valid for system call `nr`.
#[inline(always)]
unsafe fn syscall5(nr: libc::c_long, a: usize, b: usize, c: usize, d: usize, e: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller passes arguments valid for `nr`; the syscall
    // instruction clobbers rcx and r11 only.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a, in("rsi") b, in("rdx") c, in("r10") d, in("r8") e,
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Re-executes the running binary from a detached read-only bind mount of
/// itself (`open_tree(OPEN_TREE_CLONE)` of `/proc/self/exe`, made a slave
/// and read-only by one `mount_setattr`), with `argv` and `envp`. Returns
/// true when the binary already runs from a read-only mount or a memfd
/// sealed against writes, false on any failure (the caller then decides).
///
/// The binary's entry point calls it before glibc has set up anything
/// (relocations, TLS, errno, IFUNCs such as memcpy), so it is inlined
/// into its caller even without optimisation and uses only raw system
/// calls, casts and pointer arithmetic: no call into another function,
/// no allocation, no static that needs relocating.
///
/// # Safety
/// `argv` and `envp` are NULL-terminated arrays of NUL-terminated strings.
#[inline(always)]
pub unsafe fn exec_from_ro_view(
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) -> bool {
    const OPEN_TREE_CLONE: usize = 1;
    const ST_RDONLY: u64 = 1;
    let exe = b"/proc/self/exe\0" as *const [u8; 15] as usize;
    let empty = b"\0" as *const [u8; 1] as usize;
    let (cloexec, at_empty) = (libc::O_CLOEXEC as usize, libc::AT_EMPTY_PATH as usize);
    // The kernel's struct statfs (x86_64: 15 words), f_flags its 11th.
    let mut st = core::mem::MaybeUninit::<[u64; 15]>::uninit();
    let st = &mut st as *mut core::mem::MaybeUninit<[u64; 15]> as *mut u64;
    // struct mount_attr { attr_set, attr_clr, propagation, userns_fd }: a
    // slave (a clone of a shared mount is otherwise its peer), read-only.
    let attr: [u64; 4] = [MOUNT_ATTR_RDONLY, 0, libc::MS_SLAVE, 0];
    let attr = &attr as *const [u64; 4] as usize;
    // SAFETY: each system call gets NUL-terminated literals, locals that
    // outlive it (st, attr), fds opened here, or the caller's arrays; st
    // is read only after fstatfs filled it.
    unsafe {
        let fd = syscall5(
            libc::SYS_open,
            exe,
            libc::O_RDONLY as usize | cloexec,
            0,
            0,
            0,
        );
        if fd < 0 {
            return false;
        }
        let fd = fd as usize;
        let ro = syscall5(libc::SYS_fstatfs, fd, st as usize, 0, 0, 0) == 0
            && *st.wrapping_add(10) & ST_RDONLY != 0;
        let sealed = !ro && {
            let seals = syscall5(libc::SYS_fcntl, fd, libc::F_GET_SEALS as usize, 0, 0, 0);
            seals > 0 && seals as i32 & libc::F_SEAL_WRITE != 0
        };
        let tree = if ro || sealed {
            -1
        } else {
            let flags = OPEN_TREE_CLONE | cloexec | at_empty;
            syscall5(libc::SYS_open_tree, fd, empty, flags, 0, 0)
        };
        syscall5(libc::SYS_close, fd, 0, 0, 0, 0);
        if tree < 0 {
            return ro || sealed;
        }
        let tree = tree as usize;
        if syscall5(libc::SYS_mount_setattr, tree, empty, at_empty, attr, 32) == 0 {
            syscall5(
                libc::SYS_execveat,
                tree,
                empty,
                argv as usize,
                envp as usize,
                at_empty,
            );
        }
        syscall5(libc::SYS_close, tree, 0, 0, 0, 0);
    }
    false
}

/// A memfd copy of the binary, sealed against every change.
fn sealed_copy(exe: &std::fs::File) -> Result<OwnedFd> {
    let mut src = exe;
    let fd = nix::sys::memfd::memfd_create(
        c"berth",
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC | nix::sys::memfd::MFdFlags::MFD_ALLOW_SEALING,
    )
    .ctx(|| "memfd_create".into())?;
    let mut dst = std::fs::File::from(fd);
    std::io::copy(&mut src, &mut dst).map_err(|e| Error::io("copy", "/proc/self/exe", e))?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS on our memfd; integer argument.
    let r = unsafe { libc::fcntl(dst.as_raw_fd(), libc::F_ADD_SEALS, seals) };
    nix::errno::Errno::result(r).ctx(|| "seal memfd".into())?;
    Ok(OwnedFd::from(dst))
}
