//! The configuration `validate`, `config` and `up --dry-run` look at: the local files alone,
//! or laid over the team's file from git when `--git` or a `[sync]` says so (for `up
//! --dry-run` fetched now; for `validate` and `config`, which never touch the network, the
//! copy an earlier run fetched).

use super::Output;
use super::failure::Failure;
use crate::config::{self, Effective};
use crate::source::{self, GitArgs, Source, StartError};
use std::path::Path;

/// Without network (`validate`, `config`): the team's file only as an earlier run fetched it.
pub(super) fn load_offline(path: &Path, out: &Output) -> Result<Effective, Failure> {
    let home = crate::state::State::default_home()
        .ok_or_else(|| Failure::Failed("cannot find a home directory; set KFTRAY_HOME".into()))?;
    let (effective, note) = source::load_offline(path, &home).map_err(Failure::Config)?;
    if let Some(note) = note
        && !out.quiet
    {
        eprintln!("note: {note}");
    }
    Ok(effective)
}

/// As `kftray up` would start (`up --dry-run`): fetching the team's file when there is one.
pub(super) fn load(path: &Path, git: Option<GitArgs>, out: &Output) -> Result<Effective, Failure> {
    if git.is_none() {
        let local = config::read_local(path).map_err(Failure::Config)?;
        if !matches!(config::sync_of(&local), Ok(Some(_))) {
            return config::load_layers(local).map_err(Failure::Config);
        }
    }
    let home = crate::state::State::default_home()
        .ok_or_else(|| Failure::Failed("cannot find a home directory; set KFTRAY_HOME".into()))?;
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::Failed(format!("cannot start the runtime: {e}")))?;
    let spec = source::Spec {
        config: path.to_path_buf(),
        git,
        home,
    };
    let opened = runtime.block_on(Source::open(spec));
    let start = match opened {
        Ok((_, start)) => start,
        Err(StartError::Config(diagnostics)) => return Err(Failure::Config(diagnostics)),
        Err(e) => return Err(Failure::Failed(e.to_string())),
    };
    if let Some(error) = &start.sync_error {
        out.error(&format!(
            "{error}: this is the copy of the team's file fetched earlier"
        ));
    }
    // What the newest commit would run is what is asked about, not what ran before it.
    if let Some((_, diagnostics)) = start.rejected {
        return Err(Failure::Config(diagnostics));
    }
    Ok(start.revision.effective)
}

/// `effective` with its `ports = "all"` entries expanded, as `up` would start them (asking
/// their clusters now); what cannot be listed or is skipped is said on stderr.
pub(super) fn expanded(
    effective: Effective,
    names: &[String],
    tags: &[String],
    out: &Output,
) -> Effective {
    if effective.all_ports.is_empty() {
        return effective;
    }
    let listed = tokio::runtime::Runtime::new().map(|runtime| {
        let clusters = crate::cluster::Clusters::new();
        runtime.block_on(crate::engine::expand(
            &effective,
            &clusters,
            crate::engine::picks(names, tags),
        ))
    });
    let expansion = match listed {
        Ok(expansion) => expansion,
        Err(e) => {
            out.error(&format!("cannot list the ports of `ports = \"all\"`: {e}"));
            return effective;
        }
    };
    if !out.quiet {
        for (alias, why) in &expansion.unlisted {
            eprintln!("note: `{alias}` forwards all ports, which are not listed: {why}");
        }
        for skipped in &expansion.skipped {
            eprintln!("note: {skipped}");
        }
    }
    expansion.effective
}
