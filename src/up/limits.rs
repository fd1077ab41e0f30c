//! Process limits a long-running forwarder needs.

/// Raises the soft limit on open files to the hard limit. Every local connection holds a
/// descriptor, and the usual soft limit (1024 on Linux, 256 on macOS) would refuse the
/// thousandth concurrent connection while the hard limit allows far more; Go programs such
/// as kubectl get the same raise from their runtime.
pub fn raise_open_files() {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
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
