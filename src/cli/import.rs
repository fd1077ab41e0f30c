//! `kftray import`: forwards (and exposes) from kftray's JSON export, or forwards from the
//! services of a cluster annotated for kftray's auto-import, merged into kftray.toml without
//! disturbing it.

use super::failure::{Code, Failure};
use super::{Cli, Output, editing};
use crate::edit::merge::{self, Conflict, MergeError, OnConflict, Outcome, Plan};
use crate::edit::{DraftTarget, Files, Layer};
use crate::interop::cluster_import::{self, Scope};
use crate::interop::kftray_json::{self, Imported};
use std::io::Read;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["input", "from_cluster"])))]
pub struct Args {
    /// kftray's JSON export (an array of forwards), or `-` for standard input.
    #[arg(value_name = "FILE.json")]
    pub input: Option<PathBuf>,
    /// Import the services of a cluster annotated `kftray.app/enabled: "true"` (the forwards
    /// in their `kftray.app/configs`, else one per port).
    #[arg(long)]
    pub from_cluster: bool,
    /// With --from-cluster: the kubeconfig context to read (default: the current one); it is
    /// written into the imported forwards.
    #[arg(long, requires = "from_cluster", value_name = "CONTEXT")]
    pub context: Option<String>,
    /// With --from-cluster: the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config);
    /// it is written into the imported forwards.
    #[arg(long, requires = "from_cluster", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// With --from-cluster: the namespace to look in (default: the context's).
    #[arg(short = 'n', long, requires = "from_cluster", value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// With --from-cluster: look in every namespace.
    #[arg(
        short = 'A',
        long,
        requires = "from_cluster",
        conflicts_with = "namespace"
    )]
    pub all_namespaces: bool,
    /// With --from-cluster: every service, annotated or not, one forward per port; local ports
    /// are chosen so that none clashes (below 1024: 8000 + port).
    #[arg(long, requires = "from_cluster")]
    pub all_services: bool,
    /// Print what would change as a diff, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Imported forwards replace the existing ones with the same alias or local port.
    #[arg(long, conflicts_with = "rename")]
    pub force: bool,
    /// Imported forwards that collide get a free alias (`web-2`) and free local ports.
    #[arg(long)]
    pub rename: bool,
    /// Write to kftray.local.toml (personal, git-ignored) instead of kftray.toml.
    #[arg(long)]
    pub local: bool,
}

pub(super) fn run(cli: &Cli, args: &Args, out: &Output) -> Result<(), Failure> {
    let mut files = editing::open(cli)?;
    let layer = editing::layer(args.local);
    if let Err(problems) = files.before() {
        out.diagnostics(&problems);
        out.error("fix these problems before importing (nothing was written)");
        return Err(Failure::Said(Code::Failed));
    }
    let drafts = match &args.input {
        Some(file) => from_json(file, &files, layer, out),
        None => from_cluster(args, out),
    };
    let (imported, move_ports) = drafts?;
    if imported.forwards.is_empty() && imported.exposes.is_empty() {
        if !out.quiet {
            eprintln!("nothing to import");
        }
        return Ok(());
    }
    let on_conflict = if args.force {
        OnConflict::Replace
    } else if args.rename {
        OnConflict::Rename
    } else {
        OnConflict::Refuse
    };
    let options = merge::Options {
        layer,
        on_conflict,
        move_ports,
    };
    let plans = merge::merge(&mut files, &imported.forwards, options).and_then(|forwards| {
        let exposes = merge::merge(&mut files, &imported.exposes, options)?;
        Ok((forwards, exposes))
    });
    let (forwards, exposes) = match plans {
        Ok(plans) => plans,
        Err(MergeError::Existing(d) | MergeError::Invalid(_, d)) => {
            return Err(Failure::Config(d));
        }
    };
    // The exposes' names, as `status` and `down` say them.
    let exposes = named(exposes, |alias| format!("expose.{alias}"));
    let conflicts: Vec<Conflict> = [&forwards, &exposes]
        .into_iter()
        .flat_map(|p| p.conflicts.iter().cloned())
        .collect();
    if !conflicts.is_empty() {
        // Nothing is written: the forwards merged without conflict stay in memory.
        report_conflicts(&conflicts, &files, out);
        return Err(Failure::Said(Code::Failed));
    }
    let mut summary = Vec::new();
    for outcome in forwards.outcomes.iter().chain(&exposes.outcomes) {
        summary.push(match outcome {
            Outcome::Added { alias } => format!("added {alias}"),
            Outcome::Unchanged { alias } => format!("unchanged {alias} (already there)"),
            Outcome::Replaced { alias, displaced } if displaced.is_empty() => {
                format!("replaced {alias}")
            }
            Outcome::Replaced { alias, displaced } => format!(
                "replaced {alias}, and removed {} (on the same local port)",
                displaced.join(", ")
            ),
            Outcome::Renamed { wanted, alias } => {
                format!("added {alias} (`{wanted}` was taken)")
            }
        });
    }
    for (alias, from, to) in &forwards.moved {
        summary.push(format!(
            "{alias}: local port {from} was taken, {to} instead"
        ));
    }
    editing::finish(&files, out, args.dry_run, &summary)
}

/// The plan with every alias in it said as `name` says it.
fn named(mut plan: Plan, name: impl Fn(&str) -> String) -> Plan {
    for outcome in &mut plan.outcomes {
        match outcome {
            Outcome::Added { alias }
            | Outcome::Unchanged { alias }
            | Outcome::Replaced { alias, .. } => *alias = name(alias),
            Outcome::Renamed { wanted, alias } => {
                *wanted = name(wanted);
                *alias = name(alias);
            }
        }
    }
    for conflict in &mut plan.conflicts {
        match conflict {
            Conflict::Alias { alias, .. } => *alias = name(alias),
            Conflict::Port { alias, other, .. } => {
                *alias = name(alias);
                *other = name(other);
            }
        }
    }
    plan
}

/// The drafts of a kftray JSON file (local ports as given).
fn from_json(
    file: &PathBuf,
    files: &Files,
    layer: Layer,
    out: &Output,
) -> Result<(Imported, bool), Failure> {
    let (name, text) = if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::Usage(format!("cannot read standard input: {e}")))?;
        (PathBuf::from("<stdin>"), text)
    } else {
        match std::fs::read_to_string(file) {
            Ok(text) => (file.clone(), text),
            Err(e) => {
                return Err(Failure::Usage(format!(
                    "cannot read {}: {e}",
                    file.display()
                )));
            }
        }
    };
    let parsed = kftray_json::parse(&name, &text).map_err(Failure::Config)?;
    let imported = parsed.drafts(files, layer).map_err(Failure::Config)?;
    if !out.quiet {
        for w in &imported.warnings {
            out.warning(&format!(
                "{}:{}:{}: {}",
                name.display(),
                w.line,
                w.column,
                w.message
            ));
        }
        if imported
            .forwards
            .iter()
            .any(|d| matches!(d.target, DraftTarget::Service(_)))
        {
            out.note(
                "kftray's remote_port of a service is its pods' port; kftray.toml reads it as \
                 the service's port, as kubectl does. They differ only for a service whose port \
                 and targetPort differ: `kftray up` names that service's ports if so.",
            );
        }
    }
    Ok((imported, false))
}

/// The drafts found in a cluster (local ports only suggested with --all-services).
fn from_cluster(args: &Args, out: &Output) -> Result<(Imported, bool), Failure> {
    // Written into the forwards, where a relative path would be read against the file's
    // folder rather than the one it was typed in.
    let kubeconfig = args
        .kubeconfig
        .as_ref()
        .map(|k| std::path::absolute(k).unwrap_or_else(|_| k.clone()));
    let options = cluster_import::Options {
        kubeconfig,
        context: args.context.clone(),
        scope: match (&args.namespace, args.all_namespaces) {
            (_, true) => Scope::All,
            (Some(ns), false) => Scope::Namespace(ns.clone()),
            (None, false) => Scope::Context,
        },
        all_services: args.all_services,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Usage(format!("cannot start: {e}")))?;
    let found = runtime
        .block_on(cluster_import::discover(&options))
        .map_err(|e| Failure::Failed(e.to_string()))?;
    if !out.quiet {
        for note in &found.notes {
            out.note(note);
        }
        if found.services == 0 {
            out.note(&format!(
                "no service in context {} is annotated {}: \"true\" (--all-services takes every service)",
                found.context,
                crate::interop::annotations::ENABLED
            ));
        }
    }
    let imported = Imported {
        forwards: found.drafts,
        ..Imported::default()
    };
    Ok((imported, args.all_services))
}

/// Every collision, as the lines that differ, and what to do about them.
fn report_conflicts(conflicts: &[Conflict], files: &Files, out: &Output) {
    let file = files.base.path.display();
    let mut text = String::new();
    for conflict in conflicts {
        match conflict {
            Conflict::Alias {
                alias,
                existing,
                incoming,
            } => {
                text.push_str(&format!(
                    "  `{alias}` is already in {file}, with other settings:\n"
                ));
                let (old, new) = (existing.join("\n") + "\n", incoming.join("\n") + "\n");
                let diff = similar::TextDiff::from_lines(&old, &new);
                for change in diff.iter_all_changes() {
                    let sign = match change.tag() {
                        similar::ChangeTag::Delete => "-",
                        similar::ChangeTag::Insert => "+",
                        similar::ChangeTag::Equal => " ",
                    };
                    text.push_str(&format!("    {sign} {}", change.value()));
                }
            }
            Conflict::Port {
                alias,
                other,
                listen,
            } => text.push_str(&format!(
                "  `{alias}` would listen on {listen}, where `{other}` listens\n"
            )),
        }
    }
    out.error(&format!(
        "{} conflict{} with {file}; nothing was written",
        conflicts.len(),
        if conflicts.len() == 1 { "" } else { "s" }
    ));
    eprint!("{text}");
    if conflicts
        .iter()
        .any(|c| matches!(c, Conflict::Alias { .. }))
    {
        eprintln!("  (-: in the file, +: imported)");
    }
    eprintln!(
        "help: --force replaces the existing forwards, --rename imports these under free \
         aliases and local ports"
    );
}
