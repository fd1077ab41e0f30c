//! `metav1.Status` errors with upstream's codes, reasons and message texts.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use serde_json::{Value, json};

pub type Resp = Response<Full<Bytes>>;

/// An API error, rendered as upstream renders `apierrors.StatusError`.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, resource: &str, name: &str) -> Self {
        let (group, kind) = group_kind(resource);
        let mut d = json!({ "kind": kind });
        if !name.is_empty() {
            d["name"] = json!(name);
        }
        if !group.is_empty() {
            d["group"] = json!(group);
        }
        self.details = Some(d);
        self
    }

    pub fn not_found(resource: &str, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(resource)),
        )
        .with_details(resource, name)
    }

    pub fn already_exists(resource: &str, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(resource)),
        )
        .with_details(resource, name)
    }

    /// The RBAC denial text of `k8s.io/apiserver/pkg/endpoints/handlers/responsewriters`.
    pub fn forbidden(
        user: &str,
        verb: &str,
        resource: &str,
        subresource: &str,
        ns: &str,
        name: &str,
    ) -> Self {
        let full = if subresource.is_empty() {
            resource.to_string()
        } else {
            format!("{resource}/{subresource}")
        };
        let (group, _) = group_kind(resource);
        let what = if name.is_empty() {
            qualified(resource)
        } else {
            format!("{} \"{name}\"", qualified(resource))
        };
        let scope = if ns.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace \"{ns}\"")
        };
        let msg = format!(
            "{what} is forbidden: User \"{user}\" cannot {verb} resource \"{full}\" in API group \"{group}\" {scope}"
        );
        Self::new(403, "Forbidden", msg).with_details(resource, name)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn invalid(resource: &str, name: &str, message: impl Into<String>) -> Self {
        let m = format!(
            "{} \"{name}\" is invalid: {}",
            kind_of(resource),
            message.into()
        );
        Self::new(422, "Invalid", m).with_details(resource, name)
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        v
    }

    pub fn response(&self) -> Resp {
        let mut r = json_response(
            StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &self.to_json(),
        );
        if self.code == 429 {
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        r
    }
}

pub fn json_response(code: StatusCode, v: &Value) -> Resp {
    let body = serde_json::to_vec(v).unwrap_or_default();
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

fn group_kind(resource: &str) -> (&'static str, &'static str) {
    match resource {
        "deployments" => ("apps", "deployments"),
        "statefulsets" => ("apps", "statefulsets"),
        "daemonsets" => ("apps", "daemonsets"),
        "replicasets" => ("apps", "replicasets"),
        "endpointslices" => ("discovery.k8s.io", "endpointslices"),
        "pods" => ("", "pods"),
        "services" => ("", "services"),
        "endpoints" => ("", "endpoints"),
        "namespaces" => ("", "namespaces"),
        _ => ("", "unknown"),
    }
}

/// `pods`, `deployments.apps`: the resource as upstream's messages name it.
fn qualified(resource: &str) -> String {
    let (group, _) = group_kind(resource);
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

fn kind_of(resource: &str) -> String {
    crate::discovery::kind_of(resource)
        .unwrap_or("Object")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_text_matches_upstream() {
        let e = ApiError::forbidden("u", "create", "pods", "portforward", "default", "x");
        assert_eq!(
            e.message,
            "pods \"x\" is forbidden: User \"u\" cannot create resource \"pods/portforward\" in API group \"\" in the namespace \"default\""
        );
        let e = ApiError::forbidden("u", "list", "deployments", "", "", "");
        assert_eq!(
            e.message,
            "deployments.apps is forbidden: User \"u\" cannot list resource \"deployments\" in API group \"apps\" at the cluster scope"
        );
    }
}
