use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::cmp::Ordering;

/// A pod can carry traffic when it runs, reports Ready and is not being deleted: the
/// conditions under which a service's endpoints include it.
pub fn is_usable(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && phase(pod) == Some("Running")
        && ready_since(pod).is_some()
}

/// Orders candidate pods best first, as kubectl picks the pod behind `svc/x` or
/// `deployment/x`: scheduled before unscheduled, Running before Unknown before Pending, Ready
/// before not, Ready for longer first, fewer restarts first, older first. Ties keep a stable
/// order by name so two runs choose the same pod.
pub fn rank_pods(pods: &mut [Pod]) {
    pods.sort_by(|a, b| more_active(b, a).then_with(|| a.metadata.name.cmp(&b.metadata.name)));
}

/// `Greater` when `a` is the more active pod.
fn more_active(a: &Pod, b: &Pod) -> Ordering {
    let scheduled = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty())
    };
    let phase_rank = |p: &Pod| match phase(p) {
        Some("Running") => 2,
        Some("Unknown") => 1,
        Some("Pending") => 0,
        _ => -1,
    };
    scheduled(a)
        .cmp(&scheduled(b))
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| ready_since(a).is_some().cmp(&ready_since(b).is_some()))
        // Ready for longer wins: an earlier transition time is the more active pod.
        .then_with(|| match (ready_since(a), ready_since(b)) {
            (Some(Some(ta)), Some(Some(tb))) => tb.0.cmp(&ta.0),
            _ => Ordering::Equal,
        })
        .then_with(|| restarts(b).cmp(&restarts(a)))
        .then_with(|| {
            match (
                &a.metadata.creation_timestamp,
                &b.metadata.creation_timestamp,
            ) {
                (Some(ta), Some(tb)) => tb.0.cmp(&ta.0),
                (Some(_), None) => Ordering::Greater,
                (None, Some(_)) => Ordering::Less,
                (None, None) => Ordering::Equal,
            }
        })
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

/// `Some(transition time)` when the pod is Ready.
fn ready_since(pod: &Pod) -> Option<Option<&Time>> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let ready = conditions.iter().find(|c| c.type_ == "Ready")?;
    (ready.status == "True").then_some(ready.last_transition_time.as_ref())
}

fn restarts(pod: &Pod) -> i64 {
    pod.status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .map(|c| i64::from(c.restart_count))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn pod(name: &str, phase: &str, ready: Option<&str>, created: &str, restarts: i32) -> Pod {
        let mut conditions = Vec::new();
        if let Some(since) = ready {
            conditions
                .push(json!({"type": "Ready", "status": "True", "lastTransitionTime": since}));
        } else {
            conditions.push(json!({"type": "Ready", "status": "False"}));
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "creationTimestamp": created},
            "spec": {"nodeName": "node-1", "containers": [{"name": "app"}]},
            "status": {
                "phase": phase,
                "conditions": Value::Array(conditions),
                "containerStatuses": [{"name": "app", "ready": ready.is_some(), "restartCount": restarts,
                    "image": "x", "imageID": "", "started": true}]
            }
        }))
        .unwrap()
    }

    fn names(pods: &[Pod]) -> Vec<&str> {
        pods.iter()
            .map(|p| p.metadata.name.as_deref().unwrap())
            .collect()
    }

    #[test]
    fn ready_running_pods_first_then_by_ready_age_restarts_and_age() {
        let mut pods = vec![
            pod("pending", "Pending", None, "2026-01-01T00:00:00Z", 0),
            pod("not-ready", "Running", None, "2026-01-01T00:00:00Z", 0),
            pod(
                "ready-late",
                "Running",
                Some("2026-01-02T00:00:00Z"),
                "2026-01-01T00:00:00Z",
                0,
            ),
            pod(
                "ready-early",
                "Running",
                Some("2026-01-01T12:00:00Z"),
                "2026-01-01T00:00:00Z",
                0,
            ),
            pod(
                "ready-early-restarted",
                "Running",
                Some("2026-01-01T12:00:00Z"),
                "2026-01-01T00:00:00Z",
                3,
            ),
        ];
        rank_pods(&mut pods);
        assert_eq!(
            names(&pods),
            [
                "ready-early",
                "ready-early-restarted",
                "ready-late",
                "not-ready",
                "pending"
            ]
        );
    }

    #[test]
    fn equal_pods_keep_a_stable_order_by_name() {
        let mut pods = vec![
            pod(
                "b",
                "Running",
                Some("2026-01-01T00:00:00Z"),
                "2026-01-01T00:00:00Z",
                0,
            ),
            pod(
                "a",
                "Running",
                Some("2026-01-01T00:00:00Z"),
                "2026-01-01T00:00:00Z",
                0,
            ),
        ];
        rank_pods(&mut pods);
        assert_eq!(names(&pods), ["a", "b"]);
    }

    #[test]
    fn usable_means_running_ready_and_not_terminating() {
        let ready = pod(
            "a",
            "Running",
            Some("2026-01-01T00:00:00Z"),
            "2026-01-01T00:00:00Z",
            0,
        );
        assert!(is_usable(&ready));
        assert!(!is_usable(&pod(
            "b",
            "Running",
            None,
            "2026-01-01T00:00:00Z",
            0
        )));
        assert!(!is_usable(&pod(
            "c",
            "Pending",
            None,
            "2026-01-01T00:00:00Z",
            0
        )));
        let mut terminating = ready.clone();
        terminating.metadata.deletion_timestamp = ready.metadata.creation_timestamp.clone();
        assert!(!is_usable(&terminating));
    }
}
