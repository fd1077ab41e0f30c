use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// One step of a plan. `Restart` carries the new spec; the old one is what is running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Action<K, S> {
    Start { name: K, spec: S },
    Stop { name: K },
    Restart { name: K, spec: S },
}

impl<K, S> Action<K, S> {
    pub fn name(&self) -> &K {
        match self {
            Action::Start { name, .. } | Action::Stop { name } | Action::Restart { name, .. } => {
                name
            }
        }
    }
}

/// The actions, plus the forwards left alone (their open connections are not touched).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan<K, S> {
    pub actions: Vec<Action<K, S>>,
    pub unchanged: Vec<K>,
}

impl<K, S> Plan<K, S> {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

/// Diffs desired against running by name and by value: a forward whose spec is equal keeps
/// running untouched, a changed one restarts, new ones start and missing ones stop.
///
/// Stops come first, then restarts, then starts, each in name order: a forward that moves to a
/// local port another one frees in the same edit then finds the port released, and the output
/// is the same on every run.
pub fn plan<K, S>(desired: &BTreeMap<K, S>, running: &BTreeMap<K, S>) -> Plan<K, S>
where
    K: Ord + Clone,
    S: PartialEq + Clone,
{
    let mut stops = Vec::new();
    let mut restarts = Vec::new();
    let mut starts = Vec::new();
    let mut unchanged = Vec::new();
    for (name, spec) in desired {
        match running.get(name) {
            None => starts.push(Action::Start {
                name: name.clone(),
                spec: spec.clone(),
            }),
            Some(current) if current == spec => unchanged.push(name.clone()),
            Some(_) => restarts.push(Action::Restart {
                name: name.clone(),
                spec: spec.clone(),
            }),
        }
    }
    for name in running.keys().filter(|name| !desired.contains_key(*name)) {
        stops.push(Action::Stop { name: name.clone() });
    }
    stops.extend(restarts);
    stops.extend(starts);
    Plan {
        actions: stops,
        unchanged,
    }
}

impl<K: fmt::Display, S> fmt::Display for Plan<K, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.actions.is_empty() {
            return writeln!(f, "nothing to change ({} running)", self.unchanged.len());
        }
        for action in &self.actions {
            let verb = match action {
                Action::Start { .. } => "start",
                Action::Stop { .. } => "stop",
                Action::Restart { .. } => "restart",
            };
            writeln!(f, "{verb:<8}{}", action.name())?;
        }
        if !self.unchanged.is_empty() {
            writeln!(f, "{} unchanged", self.unchanged.len())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[(&'static str, u16)]) -> BTreeMap<&'static str, u16> {
        items.iter().copied().collect()
    }

    fn verbs(plan: &Plan<&'static str, u16>) -> Vec<String> {
        plan.actions
            .iter()
            .map(|a| match a {
                Action::Start { name, spec } => format!("start {name}={spec}"),
                Action::Stop { name } => format!("stop {name}"),
                Action::Restart { name, spec } => format!("restart {name}={spec}"),
            })
            .collect()
    }

    #[test]
    fn first_run_starts_everything_in_name_order() {
        let p = plan(&set(&[("web", 1), ("db", 2)]), &set(&[]));
        assert_eq!(verbs(&p), ["start db=2", "start web=1"]);
        assert!(p.unchanged.is_empty());
    }

    #[test]
    fn equal_specs_are_left_alone() {
        let both = set(&[("web", 1), ("db", 2)]);
        let p = plan(&both, &both);
        assert!(p.is_empty());
        assert_eq!(p.unchanged, ["db", "web"]);
        assert_eq!(p.to_string(), "nothing to change (2 running)\n");
    }

    #[test]
    fn stops_then_restarts_then_starts() {
        let running = set(&[("old", 1), ("web", 1), ("db", 2)]);
        let desired = set(&[("web", 5), ("db", 2), ("new", 3)]);
        let p = plan(&desired, &running);
        assert_eq!(verbs(&p), ["stop old", "restart web=5", "start new=3"]);
        assert_eq!(p.unchanged, ["db"]);
        assert_eq!(
            p.to_string(),
            "stop    old\nrestart web\nstart   new\n1 unchanged\n"
        );
    }

    #[test]
    fn empty_desired_stops_everything() {
        let p = plan(&set(&[]), &set(&[("a", 1), ("b", 2)]));
        assert_eq!(verbs(&p), ["stop a", "stop b"]);
    }
}
