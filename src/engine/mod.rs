//! The engine behind `kftray up`: makes the running forwards match the desired ones and keeps each
//! one serving until it is stopped.
//!
//! The supervisor owns every running forward. `apply` plans with the pure planner, stops and
//! restarts what changed, starts what is new, and leaves the rest (and their open
//! connections) alone. A forward binds its listener before anything else, so a taken port is
//! reported at once and "listening" means what it says; the cluster, the target and the pod
//! are found afterwards, while local connections wait for them.

mod bind;
mod connect;
mod expand;
mod expose;
mod following;
mod forward;
mod helper;
mod limits;
mod observer;
mod record;
mod relayed;
mod retry;
mod run;
mod selection;
mod spec;
mod stop;

pub use expand::{Expansion, expand};
pub use forward::{ForwardReport, Phase};
pub use limits::{keep_freed_memory, raise_open_files};
pub use observer::Observer;
pub use run::{UpError, UpOptions, run};
pub use selection::{Selection, SelectionError, desired, picks};
pub use spec::{Exposed, LocalBind, Relayed, RunSpec};
pub use stop::{Nudge, Stop};

use crate::cluster::{ClusterKey, Clusters};
use crate::config::Protocol;
use crate::forward::http_log::{self, HttpLogs};
use crate::forward::{BindError, Tuning};
use crate::hosts::Entry;
use crate::reconcile::{Action, plan};
use crate::relay::{Owner, Relays};
use crate::state::State;
use crate::transport::Transports;
use forward::RunningForward;
use helper::Helper;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;

/// The outcome of one `apply`: what each action did, by forward name.
#[derive(Debug, Default)]
pub struct Applied {
    pub started: Vec<String>,
    pub stopped: Vec<String>,
    pub restarted: Vec<String>,
    pub unchanged: Vec<String>,
    /// Forwards that could not start, with the reason (a taken port, say). They are not
    /// running; the next `apply` tries them again.
    pub failed: Vec<(String, String)>,
}

pub struct Supervisor {
    clusters: Arc<Clusters>,
    transports: Arc<Transports<ClusterKey>>,
    relays: Arc<Relays>,
    tuning: Tuning,
    running: BTreeMap<String, RunningForward>,
    http_logs: HttpLogs,
    helper: Helper,
}

/// How long stopping waits for the HTTP logs to write what their forwards sent.
const HTTP_LOGS_FLUSH: std::time::Duration = std::time::Duration::from_secs(2);

/// How long stopping waits for relay pods to be deleted.
const RELAY_CLEANUP: std::time::Duration = std::time::Duration::from_secs(10);

impl Supervisor {
    /// A supervisor whose relays say they belong to the current directory.
    pub fn new(tuning: Tuning) -> Supervisor {
        let here = std::env::current_dir().unwrap_or_default();
        Supervisor::for_project(tuning, &here.display().to_string())
    }

    /// A supervisor for `project` (the folder of its kftray.toml), which its relay pods name
    /// as their owner.
    pub fn for_project(tuning: Tuning, project: &str) -> Supervisor {
        let transports = Arc::new(Transports::default());
        Supervisor {
            clusters: Arc::new(Clusters::new()),
            transports: transports.clone(),
            relays: Relays::new(Owner::current(project), transports),
            tuning,
            running: BTreeMap::new(),
            http_logs: HttpLogs::new(http_log::dir_of(
                &State::default_home().unwrap_or_default(),
                project,
            )),
            helper: Helper::new(crate::hosts::default_socket()),
        }
    }

    /// Writes the forwards' HTTP logs under `dir` (see [`http_log::dir_of`]).
    pub fn with_http_logs(mut self, dir: PathBuf) -> Supervisor {
        self.http_logs = HttpLogs::new(dir);
        self
    }

    /// Makes the running forwards match `desired`.
    pub async fn apply(&mut self, desired: &BTreeMap<String, RunSpec>) -> Applied {
        let running: BTreeMap<String, RunSpec> = self
            .running
            .iter()
            .map(|(name, forward)| (name.clone(), forward.spec.clone()))
            .collect();
        let plan = plan(desired, &running);
        let mut applied = Applied {
            unchanged: plan.unchanged,
            ..Applied::default()
        };
        for action in plan.actions {
            match action {
                Action::Stop { name } => {
                    if let Some(forward) = self.running.remove(&name) {
                        forward.close().await;
                    }
                    applied.stopped.push(name);
                }
                Action::Restart { name, spec } => {
                    if let Some(forward) = self.running.remove(&name) {
                        forward.close().await;
                    }
                    match self.start(&name, spec).await {
                        Ok(()) => applied.restarted.push(name),
                        Err(why) => applied.failed.push((name, why.to_string())),
                    }
                }
                Action::Start { name, spec } => match self.start(&name, spec).await {
                    Ok(()) => applied.started.push(name),
                    Err(why) => applied.failed.push((name, why.to_string())),
                },
            }
        }
        self.name_hosts(&mut applied).await;
        applied
    }

    /// Gives the running forwards' host names to the hosts file. The helper takes a set
    /// whole or not at all, so when it refuses, every forward with a name stops and is
    /// retried with the others that failed: a forward without the name it was given is not
    /// what the file asks for.
    async fn name_hosts(&mut self, applied: &mut Applied) {
        let entries = |running: &BTreeMap<String, RunningForward>| -> Vec<Entry> {
            running
                .values()
                .filter_map(|f| {
                    let name = f.spec.domain.clone()?;
                    Some(Entry {
                        address: answered_at(f.local().ip()),
                        name,
                    })
                })
                .collect()
        };
        let Err(e) = self.helper.set_entries(entries(&self.running)).await else {
            return;
        };
        let named: Vec<String> = self
            .running
            .iter()
            .filter(|(_, f)| f.spec.domain.is_some())
            .map(|(name, _)| name.clone())
            .collect();
        for name in named {
            if let Some(forward) = self.running.remove(&name) {
                forward.close().await;
            }
            applied.started.retain(|n| *n != name);
            applied.restarted.retain(|n| *n != name);
            applied.unchanged.retain(|n| *n != name);
            applied
                .failed
                .push((name, format!("cannot name it in the hosts file: {e}")));
        }
        if let Err(e) = self.helper.set_entries(entries(&self.running)).await {
            tracing::warn!("kftray-helper: {e}");
        }
    }

    async fn start(&mut self, name: &str, spec: RunSpec) -> Result<(), BindError> {
        let udp = matches!(
            spec.relay,
            Some(Relayed {
                protocol: Protocol::Udp,
                ..
            })
        );
        let bound = match &spec.expose {
            Some(exposed) => bind::Bound::Exposed(exposed.clone()),
            None => bind::bind(spec.local, udp, &mut self.helper).await?,
        };
        let http_log = spec.http_log.as_ref().and_then(|settings| {
            // `alias:PORT` for each port of a list: they share the alias's file.
            let alias = name.split(':').next().unwrap_or(name);
            self.http_logs
                .open(alias, settings)
                .map_err(|e| tracing::warn!(forward = name, error = %e, "no HTTP log"))
                .ok()
        });
        let forward = RunningForward::start(
            name,
            spec,
            bound,
            self.clusters.clone(),
            self.transports.clone(),
            self.relays.clone(),
            self.tuning,
            http_log,
        );
        self.running.insert(name.to_string(), forward);
        Ok(())
    }

    /// The clients of the clusters its forwards reach, one per context.
    pub fn clusters(&self) -> &Clusters {
        &self.clusters
    }

    /// What each running forward is doing now.
    pub fn report(&self) -> Vec<ForwardReport> {
        self.running.values().map(RunningForward::report).collect()
    }

    /// Waits until any forward changes phase (a pod found or lost, an error).
    pub async fn changed(&mut self) {
        let waits = self
            .running
            .values_mut()
            .map(|f| Box::pin(f.phase_changed()));
        if waits.len() == 0 {
            std::future::pending::<()>().await;
        }
        futures::future::select_all(waits).await;
    }

    /// Stops everything: listeners close, open connections get the drain time, then the
    /// relay pods are deleted.
    pub async fn shutdown(&mut self) {
        let drain = self.tuning.drain;
        let all = std::mem::take(&mut self.running);
        futures::future::join_all(all.into_values().map(|f| f.stop(drain))).await;
        self.helper.close().await;
        self.http_logs.finish(HTTP_LOGS_FLUSH).await;
        self.relays.shutdown(RELAY_CLEANUP).await;
    }
}

/// The address a host name should answer for a forward listening on `ip`: itself, or
/// loopback for a forward on every address (0.0.0.0 answers on 127.0.0.1 too).
fn answered_at(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    }
}
