//! Process limits a long-running forwarder needs.

/// Raises the soft limit on open files to the hard limit. Every local connection holds a
/// descriptor, and the usual soft limit (1024 on Linux, 256 on macOS) would refuse the
/// thousandth concurrent connection while the hard limit allows far more; Go programs such
/// as kubectl get the same raise from their runtime.
pub fn raise_open_files() {
    // Windows has no such limit for sockets.
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    #[cfg(unix)]
    unsafe {
        let mut limit = std::mem::zeroed::<libc::rlimit>();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 || limit.rlim_cur >= limit.rlim_max
        {
            return;
        }
        let wanted = libc::rlimit {
            rlim_cur: limit.rlim_max,
            ..limit
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) != 0 {
            tracing::debug!("could not raise the open-file limit to {}", limit.rlim_max);
        }
    }
}

/// Keeps freed memory for reuse instead of handing it back to the kernel at once: every
/// frame's buffer is allocated on one thread and freed on another, and glibc's default of
/// trimming and mapping from 128 KiB made each new buffer fault its pages in again.
/// (glibc only: other allocators keep their own policy.)
pub fn keep_freed_memory() {
    // SAFETY: mallopt only changes the allocator's tuning; it is called before any thread.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 << 20);
    }
}
