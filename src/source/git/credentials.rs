//! Credentials for git servers, tried in a fixed order so that users who already have git
//! credentials need nothing new:
//!
//! 1. a token written in the URL itself (discouraged: it shows in `ps`),
//! 2. `KFTRAY_GIT_TOKEN`,
//! 3. the OS keyring (`kftray auth login` stores one per host),
//! 4. git's own credential helpers (`credential.helper`), as `git fetch` would ask them;
//!
//! and for ssh: the ssh agent, then the usual key files. A token is handed to libgit2 and
//! nowhere else: never logged, stored in state, put in a URL or in an error message.

use super::error::KeyringError;
use super::url::RepoUrl;
use git2::{Cred, CredentialType};
use std::path::PathBuf;

/// The environment variable a token may come from (CI, containers).
pub const TOKEN_ENV: &str = "KFTRAY_GIT_TOKEN";
/// The keyring service tokens are stored under; the account is `git:<host>`.
const KEYRING_SERVICE: &str = "kftray";
/// The user name sent with a token when the URL names none. GitHub and GitLab accept any
/// name with a token; this is GitHub's documented one.
pub const TOKEN_USER: &str = "x-access-token";

fn entry(host: &str) -> Result<keyring::Entry, KeyringError> {
    keyring::Entry::new(KEYRING_SERVICE, &format!("git:{host}")).map_err(keyring_error)
}

fn keyring_error(e: keyring::Error) -> KeyringError {
    let reason = e.to_string();
    match e {
        keyring::Error::NoDefaultStore | keyring::Error::NoStorageAccess(_) => {
            KeyringError::Unavailable { reason }
        }
        _ => KeyringError::Failed { reason },
    }
}

/// Stores `token` for `host` in the OS keyring, replacing any there.
pub fn store_token(host: &str, token: &str) -> Result<(), KeyringError> {
    entry(host)?.set_password(token).map_err(keyring_error)
}

/// Removes the token of `host`; false when there was none.
pub fn delete_token(host: &str) -> Result<bool, KeyringError> {
    match entry(host)?.delete_credential() {
        Ok(()) => Ok(true),
        Err(keyring::Error::NoEntry) => Ok(false),
        Err(e) => Err(keyring_error(e)),
    }
}

/// The token stored for `host`, if any.
pub fn stored_token(host: &str) -> Result<Option<String>, KeyringError> {
    match entry(host)?.get_password() {
        Ok(token) => Ok(Some(token)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(keyring_error(e)),
    }
}

/// The token in the environment, if set and not empty.
pub fn env_token() -> Option<String> {
    std::env::var(TOKEN_ENV)
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// The git credential helpers configured for this user (`credential.helper`), by name.
pub fn git_helpers() -> Vec<String> {
    let Ok(config) = git2::Config::open_default() else {
        return Vec::new();
    };
    let Ok(mut entries) = config.multivar("credential.helper", None) else {
        return Vec::new();
    };
    let mut helpers = Vec::new();
    while let Some(Ok(entry)) = entries.next() {
        if let Ok(value) = entry.value()
            && !value.is_empty()
        {
            helpers.push(value.to_owned());
        }
    }
    helpers
}

/// The credentials of one fetch: libgit2 asks again after each one the server refuses, and
/// gets the next, until there are none left.
pub struct Credentials {
    url: RepoUrl,
    plain_step: usize,
    ssh_step: usize,
    /// What was offered, for the error message (names of sources, never secrets).
    pub tried: Vec<String>,
    /// Every secret offered, so that no message can quote one (see `scrub`).
    secrets: Vec<String>,
    /// Why a source could not be read (the keyring missing, say), for the error message.
    pub notes: Vec<String>,
}

impl Credentials {
    pub fn new(url: &RepoUrl) -> Credentials {
        Credentials {
            url: url.clone(),
            plain_step: 0,
            ssh_step: 0,
            tried: Vec::new(),
            secrets: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn user(&self, from_url: Option<&str>) -> String {
        self.url
            .username
            .clone()
            .or_else(|| from_url.map(str::to_owned))
            .unwrap_or_else(|| {
                if self.url.is_ssh() {
                    "git".to_owned()
                } else {
                    TOKEN_USER.to_owned()
                }
            })
    }

    /// libgit2's credentials callback.
    pub fn next(
        &mut self,
        url: &str,
        username_from_url: Option<&str>,
        allowed: CredentialType,
    ) -> Result<Cred, git2::Error> {
        let user = self.user(username_from_url);
        if allowed.contains(CredentialType::USERNAME) {
            return Cred::username(&user);
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT)
            && let Some(cred) = self.next_plain(url, &user)
        {
            return Ok(cred);
        }
        if allowed.contains(CredentialType::SSH_KEY)
            && let Some(cred) = self.next_ssh(&user)
        {
            return Ok(cred);
        }
        Err(git2::Error::from_str("no more credentials to try"))
    }

    fn next_plain(&mut self, url: &str, user: &str) -> Option<Cred> {
        let host = self.url.host.clone().unwrap_or_default();
        while self.plain_step < 4 {
            let step = self.plain_step;
            self.plain_step += 1;
            let (label, secret) = match step {
                0 => ("the URL's password".to_owned(), self.url.password.clone()),
                1 => (TOKEN_ENV.to_owned(), env_token()),
                2 => match stored_token(&host) {
                    Ok(token) => (format!("the OS keyring's token for {host}"), token),
                    Err(why) => {
                        tracing::debug!("keyring: {why}");
                        self.notes.push(why.to_string());
                        continue;
                    }
                },
                _ => {
                    let config = git2::Config::open_default().ok()?;
                    let username = self.url.username.as_deref();
                    match Cred::credential_helper(&config, url, username) {
                        Ok(cred) => {
                            self.tried.push("git's credential helpers".to_owned());
                            return Some(cred);
                        }
                        Err(_) => continue,
                    }
                }
            };
            let Some(secret) = secret else { continue };
            let cred = Cred::userpass_plaintext(user, &secret).ok()?;
            self.tried.push(label);
            self.secrets.push(secret);
            return Some(cred);
        }
        None
    }

    fn next_ssh(&mut self, user: &str) -> Option<Cred> {
        let home = std::env::home_dir().unwrap_or_default();
        let keys: Vec<PathBuf> = ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|name| home.join(".ssh").join(name))
            .collect();
        loop {
            let step = self.ssh_step;
            self.ssh_step += 1;
            if step == 0 {
                if std::env::var_os("SSH_AUTH_SOCK").is_none() {
                    continue;
                }
                if let Ok(cred) = Cred::ssh_key_from_agent(user) {
                    self.tried.push("the ssh agent".to_owned());
                    return Some(cred);
                }
                continue;
            }
            let key = keys.get(step - 1)?;
            if !key.is_file() {
                continue;
            }
            let public = key.with_extension("pub");
            let public = public.is_file().then_some(public);
            if let Ok(cred) = Cred::ssh_key(user, public.as_deref(), key, None) {
                self.tried.push(key.display().to_string());
                return Some(cred);
            }
        }
    }

    /// `text` without any secret this fetch offered: a last guard on messages from libgit2.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = super::url::redact(text);
        for secret in &self.secrets {
            if !secret.is_empty() {
                text = text.replace(secret.as_str(), "***");
            }
        }
        text
    }
}
