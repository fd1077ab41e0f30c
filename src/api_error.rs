//! Kubernetes API errors as one line a person reads: the server's message and what its status
//! code means. kube-rs's own Display repeats the whole `Status` in Debug form, and a status
//! that is not JSON (the API server's 429 is plain text) shows as "Failed to parse error data".

use crate::error_chain::error_chain;
use kube::runtime::watcher;

/// An error of a call to the API server, as one line.
pub fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status_line(status.code, &status.message),
        other => error_chain(other),
    }
}

/// A watcher's error, with what it was doing.
pub fn describe_watch(error: &watcher::Error) -> String {
    match error {
        watcher::Error::InitialListFailed(e) => format!("listing: {}", describe(e)),
        watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => {
            format!("watching: {}", describe(e))
        }
        watcher::Error::WatchError(status) => {
            format!("watching: {}", status_line(status.code, &status.message))
        }
        other => other.to_string(),
    }
}

fn status_line(code: u16, message: &str) -> String {
    let message = message.trim();
    match code {
        429 => format!("the API server is overloaded (429 Too Many Requests): {message}"),
        500..=599 => format!("the API server failed ({code}): {message}"),
        _ => format!("{message} ({code})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(Status::failure(message, "").with_code(code).boxed())
    }

    #[test]
    fn a_refusal_is_the_servers_words_and_its_code() {
        let e = api(
            403,
            "services \"web\" is forbidden: User \"dev\" cannot list resource \"services\"",
        );
        assert_eq!(
            describe(&e),
            "services \"web\" is forbidden: User \"dev\" cannot list resource \"services\" (403)"
        );
    }

    #[test]
    fn overload_and_server_failures_say_whose_fault_it_is() {
        let e = watcher::Error::InitialListFailed(api(
            429,
            "Too many requests, please try again later.",
        ));
        assert_eq!(
            describe_watch(&e),
            "listing: the API server is overloaded (429 Too Many Requests): Too many requests, please try again later."
        );
        let e = watcher::Error::WatchFailed(api(503, "etcdserver: leader changed"));
        assert_eq!(
            describe_watch(&e),
            "watching: the API server failed (503): etcdserver: leader changed"
        );
    }
}
