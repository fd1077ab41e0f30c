//! What a relay pod's status says of it: ready, starting, broken for good, or gone.

use k8s_openapi::api::core::v1::Pod;

/// What a relay pod's status says.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Health {
    Ready,
    Starting(String),
    /// Something only a person fixes: a missing image, an unschedulable pod.
    Broken(String),
    Gone(String),
}

/// The pod's condition, from its status.
pub(super) fn health(pod: &Pod, uid: &str) -> Health {
    let name = pod.metadata.name.clone().unwrap_or_default();
    if pod.metadata.uid.as_deref().is_some_and(|u| u != uid) {
        return Health::Gone(format!("relay pod {name} was replaced"));
    }
    if pod.metadata.deletion_timestamp.is_some() {
        return Health::Gone(format!("relay pod {name} is being deleted"));
    }
    let status = pod.status.clone().unwrap_or_default();
    let phase = status.phase.clone().unwrap_or_default();
    let containers = status.container_statuses.clone().unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        let detail = containers
            .iter()
            .find_map(|c| c.state.as_ref()?.terminated.clone())
            .map(|t| format!(", exit code {}", t.exit_code))
            .unwrap_or_default();
        return Health::Gone(format!("relay pod {name} ended ({phase}{detail})"));
    }
    for container in &containers {
        let Some(waiting) = container.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
            continue;
        };
        let reason = waiting.reason.clone().unwrap_or_default();
        if matches!(
            reason.as_str(),
            "ErrImagePull"
                | "ImagePullBackOff"
                | "InvalidImageName"
                | "CreateContainerConfigError"
                | "CreateContainerError"
                | "CrashLoopBackOff"
        ) {
            let message = waiting.message.clone().unwrap_or_default();
            let hint = if matches!(
                reason.as_str(),
                "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName"
            ) {
                "; set `[relay] image` (in kftray.toml or kftray.local.toml) to a relay image \
                 this cluster can pull, such as a copy in its own registry"
            } else {
                ""
            };
            return Health::Broken(format!(
                "relay pod {name} cannot start: {reason} {message} (image {}){hint}",
                container.image
            ));
        }
    }
    let conditions = status.conditions.clone().unwrap_or_default();
    if let Some(unscheduled) = conditions
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
    {
        return Health::Broken(format!(
            "relay pod {name} cannot be scheduled: {}",
            unscheduled.message.clone().unwrap_or_default()
        ));
    }
    if conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True")
    {
        return Health::Ready;
    }
    Health::Starting(format!(
        "waiting for relay pod {name} to be Ready ({phase})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": "kftray-relay-x", "uid": "u1"}, "status": status}),
        )
        .unwrap()
    }

    #[test]
    fn a_pods_status_says_ready_starting_broken_or_gone() {
        let ready =
            pod(json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}));
        assert_eq!(health(&ready, "u1"), Health::Ready);
        assert!(matches!(health(&ready, "u2"), Health::Gone(_)));
        let pulling = pod(json!({"phase": "Pending", "containerStatuses": [{
            "name": "relay", "image": "ghcr.io/x/relay:9", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "not found"}}}]}));
        let Health::Broken(why) = health(&pulling, "u1") else {
            panic!()
        };
        assert!(
            why.contains("ImagePullBackOff")
                && why.contains("ghcr.io/x/relay:9")
                && why.contains("`[relay] image`"),
            "{why}"
        );
        let ended = pod(json!({"phase": "Succeeded", "containerStatuses": [{
            "name": "relay", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0}}}]}));
        let Health::Gone(why) = health(&ended, "u1") else {
            panic!()
        };
        assert!(why.contains("Succeeded, exit code 0"), "{why}");
        let pending = pod(json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "message": "0/3 nodes are available"}]}));
        assert!(matches!(health(&pending, "u1"), Health::Broken(w) if w.contains("0/3 nodes")));
        assert!(matches!(
            health(&pod(json!({"phase": "Pending"})), "u1"),
            Health::Starting(_)
        ));
    }
}
