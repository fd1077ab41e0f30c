//! A repository location as the user wrote it, split into what libgit2 connects to, what is
//! printed, and the credentials it carried. A token never stays in a URL: userinfo is taken
//! out before libgit2 sees the URL (so it reaches no file of the cache either) and before
//! anything is printed.

use super::error::UrlError;
use std::path::Path;

#[derive(Clone, PartialEq, Eq)]
pub struct RepoUrl {
    /// What libgit2 connects to: never a password, and no userinfo at all for http(s).
    pub(crate) connect: String,
    /// What is printed and stored: the same, relative paths made absolute.
    pub display: String,
    /// The host credentials are looked up for; None for a repository on this machine.
    pub host: Option<String>,
    /// The user name written in the URL (`alice@` or `git@`).
    pub username: Option<String>,
    /// A password or token written in the URL: used as a credential, never sent in the URL.
    pub(crate) password: Option<String>,
}

// Debug must not print the password.
impl std::fmt::Debug for RepoUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoUrl")
            .field("display", &self.display)
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl RepoUrl {
    /// Parses `raw`; a relative local path is resolved against `base`.
    pub fn parse(raw: &str, base: &Path) -> Result<RepoUrl, UrlError> {
        let raw = raw.trim();
        if raw.contains("://") {
            let mut url = url::Url::parse(raw).map_err(|e| UrlError::NotUrl {
                url: redact(raw),
                reason: e.to_string(),
            })?;
            let username = Some(percent_decode(url.username())).filter(|u| !u.is_empty());
            let password = url.password().map(percent_decode);
            let _ = url.set_password(None);
            let web = matches!(url.scheme(), "http" | "https");
            if web {
                // A token is as often in the user slot (https://TOKEN@host/...) as in the
                // password slot: nothing of the userinfo is kept in what is printed.
                let _ = url.set_username("");
            }
            let host = url.host_str().map(str::to_owned).filter(|h| !h.is_empty());
            if url.scheme() == "file" {
                let path = url
                    .to_file_path()
                    .map_err(|()| UrlError::NotFileUrl { url: redact(raw) })?;
                return Ok(RepoUrl::local(&path));
            }
            let text = url.to_string();
            return Ok(RepoUrl {
                connect: text.clone(),
                display: text,
                host,
                username,
                password,
            });
        }
        if let Some((userhost, _)) = raw.split_once(':')
            && !raw.starts_with('/')
            && !raw.starts_with('.')
            && !userhost.contains('/')
        {
            // scp-like: [user@]host:path, over ssh.
            let (username, host) = match userhost.rsplit_once('@') {
                Some((user, host)) => (Some(user.to_owned()), host),
                None => (None, userhost),
            };
            return Ok(RepoUrl {
                connect: raw.to_owned(),
                display: raw.to_owned(),
                host: Some(host.to_owned()),
                username,
                password: None,
            });
        }
        Ok(RepoUrl::local(&base.join(raw)))
    }

    fn local(path: &Path) -> RepoUrl {
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let text = path.display().to_string();
        RepoUrl {
            connect: text.clone(),
            display: text,
            host: None,
            username: None,
            password: None,
        }
    }

    /// Whether libgit2 will speak ssh to it.
    pub fn is_ssh(&self) -> bool {
        self.connect.starts_with("ssh://") || (!self.connect.contains("://") && self.host.is_some())
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// `text` with the userinfo of every URL in it removed: for messages that quote a URL the
/// user typed (`https://TOKEN@host/x` → `https://host/x`).
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let end = after
            .find(|c: char| c == '/' || c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(i) => out.push_str(&authority[i + 1..]),
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_becomes_credentials_and_leaves_the_url() {
        let u = RepoUrl::parse(
            "https://alice:s3cr%40t@git.example/team/env.git",
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(u.connect, "https://git.example/team/env.git");
        assert_eq!(u.display, u.connect);
        assert_eq!(u.host.as_deref(), Some("git.example"));
        assert_eq!(u.username.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("s3cr@t"));
        assert!(!format!("{u:?}").contains("s3cr"));

        let token_as_user =
            RepoUrl::parse("https://ghp_abc@github.com/a/b.git", Path::new("/")).unwrap();
        assert!(!token_as_user.display.contains("ghp_abc"));
    }

    #[test]
    fn ssh_git_and_local_forms() {
        let scp = RepoUrl::parse("git@github.com:acme/env.git", Path::new("/")).unwrap();
        assert!(scp.is_ssh());
        assert_eq!(scp.host.as_deref(), Some("github.com"));
        assert_eq!(scp.username.as_deref(), Some("git"));
        let ssh = RepoUrl::parse("ssh://git@host:2222/env.git", Path::new("/")).unwrap();
        assert!(ssh.is_ssh());
        assert_eq!(ssh.display, "ssh://git@host:2222/env.git");
        let daemon = RepoUrl::parse("git://127.0.0.1:9418/env.git", Path::new("/")).unwrap();
        assert!(!daemon.is_ssh());
        let rel = RepoUrl::parse("../team.git", Path::new("/work/project")).unwrap();
        assert_eq!(rel.connect, "/work/project/../team.git");
        assert_eq!(rel.host, None);
        let file = RepoUrl::parse("file:///srv/git/team.git", Path::new("/")).unwrap();
        assert_eq!(file.connect, "/srv/git/team.git");
    }

    #[test]
    fn redact_removes_userinfo_wherever_a_url_is_quoted() {
        assert_eq!(
            redact("failed: 'https://x-access-token:tok@host/r.git' said 401; see http://a@b/c"),
            "failed: 'https://host/r.git' said 401; see http://b/c"
        );
        assert_eq!(redact("no url here"), "no url here");
    }
}
