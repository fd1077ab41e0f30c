//! How a run follows its source, as `status` shows it: one type whose transitions are the
//! only writers of its `SourceRow`, so that every success clears the errors it answers.

use crate::source::GitInfo;
use crate::state::{SourceRow, now_ms};

#[derive(Debug, Default)]
pub(super) struct Following {
    row: SourceRow,
}

impl Following {
    pub(super) fn row(&self) -> &SourceRow {
        &self.row
    }

    /// The repository followed from now on (or none); its commit is not known yet.
    pub(super) fn repository(&mut self, git: Option<&GitInfo>) {
        self.row.git_repo = git.map(|g| g.repo.clone());
        self.row.git_ref = git.map(|g| g.reference.clone());
        self.row.git_path = git.map(|g| g.path.clone());
        self.row.git_commit = None;
    }

    /// This commit's file runs.
    pub(super) fn running(&mut self, commit: Option<&str>) {
        self.row.git_commit = commit.map(str::to_owned);
    }

    /// A fetch went through.
    pub(super) fn synced(&mut self) {
        self.row.git_synced_at_ms = Some(now_ms());
        self.row.git_sync_error = None;
        self.row.git_sync_error_at_ms = None;
    }

    /// A fetch failed; what runs stays.
    pub(super) fn sync_failed(&mut self, error: &str) {
        self.row.git_sync_error = Some(error.to_owned());
        self.row.git_sync_error_at_ms = Some(now_ms());
    }

    /// A change was applied: earlier reload errors and rejected commits are answered.
    pub(super) fn reloaded(&mut self) {
        self.row.reloaded_at_ms = Some(now_ms());
        self.row.reload_error = None;
        self.row.reload_error_at_ms = None;
        self.row.git_rejected_commit = None;
        self.row.git_rejected_error = None;
    }

    /// A change was not applied, for this reason (rendered without colour). A newer team
    /// commit it came from was fetched, so the repository answered.
    pub(super) fn rejected(&mut self, why: &str, commit: Option<String>) {
        self.row.reload_error = Some(why.to_owned());
        self.row.reload_error_at_ms = Some(now_ms());
        if let Some(commit) = commit {
            self.row.git_synced_at_ms = Some(now_ms());
            self.row.git_rejected_commit = Some(commit);
            self.row.git_rejected_error = Some(why.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_success_clears_the_errors_it_answers_and_only_those() {
        let mut following = Following::default();
        following.repository(Some(&GitInfo {
            repo: "https://example.test/team.git".into(),
            reference: "main".into(),
            path: "kftray.toml".into(),
        }));
        following.running(Some("abc"));
        following.sync_failed("no route to host");
        following.rejected("bad port", Some("def".into()));
        assert_eq!(following.row().git_rejected_commit.as_deref(), Some("def"));

        following.reloaded();
        let row = following.row();
        assert_eq!(row.reload_error, None);
        assert_eq!(row.git_rejected_commit, None);
        assert_eq!(row.git_sync_error.as_deref(), Some("no route to host"));

        following.synced();
        assert_eq!(following.row().git_sync_error, None);
        assert_eq!(following.row().git_commit.as_deref(), Some("abc"));

        following.repository(None);
        assert_eq!(following.row().git_repo, None);
        assert_eq!(following.row().git_commit, None);
    }
}
