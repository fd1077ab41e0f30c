//! `kftray export`: the effective configuration as kftray's JSON (for the kftray app's
//! import), or as one self-contained kftray.toml.

use super::failure::{Code, Failure, Outcome};
use super::output::say;
use super::{Cli, Output, load_effective};
use crate::cluster::{ClusterKey, context_namespace};
use crate::config::{self, Effective, IngressTls};
use crate::edit::document::{self, EXPOSES, FORWARDS};
use crate::edit::{ExposeDraft, Inherited};
use crate::interop::{self, kftray_json};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `json`: kftray's format, which the kftray app imports; `toml`: kftray.toml with
    /// kftray.local.toml laid over it, as one file.
    #[arg(short = 'o', long, visible_alias = "output", value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// With json: leave out the forwards kftray's format cannot carry (deployment, statefulset,
    /// daemonset and pod-name targets, port names; exposes whose Service port is not their
    /// local port, or whose Ingress kftray's cannot be) instead of failing.
    #[arg(long)]
    pub skip_unsupported: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Toml,
}

pub(super) fn run(cli: &Cli, args: &Args, out: &Output) -> Outcome {
    let effective = load_effective(cli, out)?;
    match args.format {
        Format::Toml => {
            say(&as_toml(&effective));
            Ok(())
        }
        Format::Json => as_json(&effective, args.skip_unsupported, out),
    }
}

fn as_toml(effective: &Effective) -> String {
    let mut doc = config::empty_document(Some(config::SCHEMA_URL));
    if let Some(sync) = &effective.sync {
        let mut t = toml_edit::Table::new();
        t.decor_mut().set_prefix("\n");
        t["repo"] = toml_edit::value(&sync.repo);
        t["ref"] = toml_edit::value(&sync.reference);
        t["path"] = toml_edit::value(sync.path.display().to_string());
        if let Some(interval) = serde_json::to_value(sync)
            .ok()
            .and_then(|v| v.get("interval")?.as_str().map(String::from))
        {
            t["interval"] = toml_edit::value(interval);
        }
        doc["sync"] = toml_edit::Item::Table(t);
    }
    for draft in interop::drafts_of(effective) {
        let table = draft.to_table(&Inherited::default());
        document::insert(&mut doc, FORWARDS, &draft.alias, table);
    }
    for draft in interop::expose_drafts_of(effective) {
        let table = draft.to_table(&Inherited::default());
        document::insert(&mut doc, EXPOSES, &draft.alias, table);
    }
    doc.to_string()
}

fn as_json(effective: &Effective, skip: bool, out: &Output) -> Outcome {
    let mut configs = Vec::new();
    let mut unsupported = Vec::new();
    let mut lost = Vec::new();
    for draft in interop::drafts_of(effective) {
        let forward = effective.forwards.iter().find(|f| f.alias == draft.alias);
        let cluster = forward.map(|f| ClusterKey {
            kubeconfig: f.kubeconfig.clone(),
            context: f.context.clone(),
        });
        let namespace = namespace_of(&draft.alias, draft.namespace.as_ref(), cluster, out);
        match kftray_json::from_draft(&draft, &namespace) {
            Ok(mut c) => {
                if !draft.tags.is_empty() {
                    lost.push(format!("{} (tags)", draft.alias));
                }
                let alias = c.first().and_then(|c| c.alias.clone());
                if draft.description.is_some() && alias != draft.description {
                    lost.push(format!("{} (description)", draft.alias));
                }
                if !draft.enabled {
                    lost.push(format!("{} (enabled = false)", draft.alias));
                }
                configs.append(&mut c);
            }
            Err(why) => unsupported.push(format!("{}: {why}", draft.alias)),
        }
    }
    for draft in interop::expose_drafts_of(effective) {
        let name = format!("expose.{}", draft.alias);
        let expose = effective.exposes.iter().find(|e| e.alias == draft.alias);
        let cluster = expose.map(|e| ClusterKey {
            kubeconfig: e.kubeconfig.clone(),
            context: e.context.clone(),
        });
        let namespace = namespace_of(&name, draft.namespace.as_ref(), cluster, out);
        match kftray_json::from_expose(&draft, &namespace) {
            Ok(c) => {
                lost.extend(lost_of_expose(&draft).map(|what| format!("{name} ({what})")));
                configs.push(c);
            }
            Err(why) => unsupported.push(format!("{name}: {why}")),
        }
    }
    if !unsupported.is_empty() && !skip {
        out.error(&format!(
            "{} forward{} cannot be written in kftray's JSON:",
            unsupported.len(),
            if unsupported.len() == 1 { "" } else { "s" }
        ));
        for line in &unsupported {
            eprintln!("  {line}");
        }
        eprintln!("  --skip-unsupported exports the others");
        return Err(Failure::Said(Code::Failed));
    }
    let json = serde_json::to_string_pretty(&configs)
        .map_err(|e| Failure::Usage(format!("cannot write JSON: {e}")))?;
    say(&format!("{json}\n"));
    if !out.quiet {
        for line in &unsupported {
            out.warning(&format!("left out {line}"));
        }
        if !lost.is_empty() {
            out.note(&format!(
                "kftray's JSON has no tags, descriptions, disabled forwards or TLS Secret \
                 names; not kept: {}",
                lost.join(", ")
            ));
        }
    }
    Ok(())
}

/// The namespace written for `name`: its own, else the one kubectl would use in its cluster,
/// since kftray's import needs one.
fn namespace_of(
    name: &str,
    namespace: Option<&String>,
    cluster: Option<ClusterKey>,
    out: &Output,
) -> String {
    if let Some(ns) = namespace {
        return ns.clone();
    }
    let Some(cluster) = cluster else {
        return "default".to_owned();
    };
    context_namespace(&cluster).unwrap_or_else(|e| {
        if !out.quiet {
            out.note(&format!(
                "{name}: namespace \"default\" written, as the context's is unknown ({e})"
            ));
        }
        "default".to_owned()
    })
}

/// What kftray's JSON does not keep of an expose it can carry.
fn lost_of_expose(draft: &ExposeDraft) -> impl Iterator<Item = &'static str> {
    // kftray names the Secret after its own id.
    let secret = draft.ingress.as_ref().and_then(|i| i.tls.as_ref());
    let own_secret = secret.is_some_and(|t| t.secret != IngressTls::default_secret(&draft.service));
    [
        (draft.description.is_some(), "description"),
        (!draft.enabled, "enabled = false"),
        (own_secret, "tls_secret"),
    ]
    .into_iter()
    .filter_map(|(lost, what)| lost.then_some(what))
}
