//! What a peer costs, read from /proc: CPU seconds and resident memory of a process and every
//! process below it (kubectl's dispatcher runs the real kubectl as its child).

use std::collections::HashMap;

/// `pid` and its descendants.
fn tree(pid: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(parent) = stat_fields(child).and_then(|f| f.get(1)?.parse().ok()) {
                children.entry(parent).or_default().push(child);
            }
        }
    }
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        all.extend(children.get(&all[i]).into_iter().flatten());
        i += 1;
    }
    all
}

/// The fields of /proc/PID/stat after the command name (which may hold spaces): state is
/// index 0, ppid 1, utime 11, stime 12.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 2..];
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// The processes below `pid` whose command name is one of `names`.
pub fn descendants_named(pid: u32, names: &[&str]) -> Vec<u32> {
    tree(pid)
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|comm| names.contains(&comm.trim()))
        })
        .collect()
}

/// User plus system CPU seconds used so far by `pids` and their descendants.
pub fn cpu_seconds(pids: &[u32]) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    pids.iter()
        .flat_map(|pid| tree(*pid))
        .filter_map(stat_fields)
        .map(|f| {
            let field = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            (field(11) + field(12)) / ticks
        })
        .sum()
}

/// Resident memory in MiB of `pids` and their descendants.
pub fn rss_mib(pids: &[u32]) -> f64 {
    pids.iter()
        .flat_map(|pid| tree(*pid))
        .filter_map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .sum::<f64>()
        / 1024.0
}
