use super::*;

fn row(name: &str, state: ForwardState) -> ForwardRow {
    ForwardRow {
        name: name.into(),
        local_address: "127.0.0.1:8080".into(),
        target: "svc/web:http".into(),
        state,
        pod: Some("web-1".into()),
        connections: 2,
        bytes_in: 10,
        bytes_out: 20,
        since_ms: now_ms(),
        last_error: None,
    }
}

/// A run recorded for a process that has already exited, as after kill -9.
fn dead_run(state: &State, project: &str) -> RunId {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    state
        .conn
        .execute(
            "INSERT INTO runs (project, pid, pid_start, source, started_at) VALUES (?1, ?2, NULL, 'x', 0)",
            params![project, pid],
        )
        .unwrap();
    state.conn.last_insert_rowid()
}

#[test]
fn a_second_live_run_of_a_project_is_refused_with_the_owner() {
    let home = tempfile::tempdir().unwrap();
    let mut state = State::open(home.path()).unwrap();
    let run = state.begin_run("/p", "/p/kftray.toml").unwrap();
    // A second process opening the same file sees the same answer.
    let mut other = State::open(home.path()).unwrap();
    match other.begin_run("/p", "/p/kftray.toml") {
        Err(StateError::AlreadyRunning { pid, .. }) => assert_eq!(pid, std::process::id()),
        res => panic!("expected AlreadyRunning, got {res:?}"),
    }
    // Another project is independent.
    other.begin_run("/q", "/q/kftray.toml").unwrap();
    state.end_run(run, "stopped by user").unwrap();
    other.begin_run("/p", "/p/kftray.toml").unwrap();
}

#[test]
fn a_run_whose_process_died_is_reaped_and_replaced() {
    let home = tempfile::tempdir().unwrap();
    let mut state = State::open(home.path()).unwrap();
    let dead = dead_run(&state, "/p");
    state
        .put_forward(dead, &row("web", ForwardState::Ready))
        .unwrap();

    let run = state.begin_run("/p", "/p/kftray.toml").unwrap();
    assert_ne!(run, dead);
    assert_eq!(
        state.forwards(dead).unwrap()[0].state,
        ForwardState::Stopped
    );
    assert_eq!(state.events(dead, 10).unwrap()[0].kind, EventKind::Reaped);
    assert_eq!(state.live_runs(Some("/p")).unwrap()[0].id, run);
}

#[test]
fn reap_closes_only_dead_runs() {
    let home = tempfile::tempdir().unwrap();
    let mut state = State::open(home.path()).unwrap();
    let dead = dead_run(&state, "/dead");
    let live = state.begin_run("/live", "src").unwrap();
    let reaped = state.reap_dead_runs().unwrap();
    assert_eq!(reaped.iter().map(|r| r.id).collect::<Vec<_>>(), [dead]);
    let runs = state.live_runs(None).unwrap();
    assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), [live]);
}

#[test]
fn forwards_are_upserted_listed_and_removed() {
    let home = tempfile::tempdir().unwrap();
    let mut state = State::open(home.path()).unwrap();
    let run = state.begin_run("/p", "src").unwrap();
    state
        .put_forward(run, &row("web", ForwardState::Waiting))
        .unwrap();
    state
        .put_forward(run, &row("db", ForwardState::Ready))
        .unwrap();
    let mut web = row("web", ForwardState::Ready);
    web.bytes_in = 1 << 40;
    state.put_forward(run, &web).unwrap();
    let rows = state.forwards(run).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].name, "db");
    assert_eq!(rows[1], web);
    state.remove_forward(run, "db").unwrap();
    assert_eq!(state.forwards(run).unwrap(), vec![web]);
}

#[test]
fn events_keep_the_newest_in_order() {
    let home = tempfile::tempdir().unwrap();
    let mut state = State::open(home.path()).unwrap();
    let run = state.begin_run("/p", "src").unwrap();
    for i in 0..5 {
        state
            .record_event(
                run,
                Some("web"),
                EventKind::Reloaded,
                &format!("event {i}"),
                now_ms(),
            )
            .unwrap();
    }
    let events = state.events(run, 2).unwrap();
    let messages: Vec<_> = events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["event 3", "event 4"]);
}

#[test]
fn a_name_this_kftray_does_not_know_is_an_error_that_says_so() {
    let home = tempfile::tempdir().unwrap();
    let mut state = State::open(home.path()).unwrap();
    let run = state.begin_run("/p", "src").unwrap();
    state
        .conn
        .execute(
            "INSERT INTO events (run_id, at, kind, message) VALUES (?1, 0, 'teleported', '')",
            [run],
        )
        .unwrap();
    let error = state.events(run, 10).unwrap_err().to_string();
    assert!(
        error.contains("unknown event kind \"teleported\""),
        "{error}"
    );
    assert_eq!(
        "sync-failed".parse::<EventKind>().unwrap(),
        EventKind::SyncFailed
    );
    assert_eq!(ForwardState::Waiting.to_string(), "waiting");
}

#[test]
fn reopening_keeps_data_and_a_newer_schema_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let run = State::open(home.path())
        .unwrap()
        .begin_run("/p", "src")
        .unwrap();
    let state = State::open(home.path()).unwrap();
    assert_eq!(state.live_runs(None).unwrap()[0].id, run);
    state.conn.pragma_update(None, "user_version", 99).unwrap();
    drop(state);
    match State::open(home.path()) {
        Err(StateError::TooNew { found: 99, .. }) => {}
        res => panic!("expected TooNew, got {:?}", res.err()),
    }
}

#[test]
fn a_newer_kftrays_database_is_left_exactly_as_it_was() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("state.db");
    {
        // As a later kftray might write it: another journal mode, tables of its own.
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
        conn.execute_batch("CREATE TABLE future (x INTEGER); INSERT INTO future VALUES (7);")
            .unwrap();
        conn.pragma_update(None, "user_version", 4).unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    match State::open(home.path()) {
        Err(StateError::TooNew {
            found: 4, known: 3, ..
        }) => {}
        res => panic!("expected TooNew, got {:?}", res.err()),
    }
    assert_eq!(std::fs::read(&path).unwrap(), before, "the file changed");
    for side in ["state.db-wal", "state.db-shm", "state.db-journal"] {
        assert!(!home.path().join(side).exists(), "{side} was made");
    }
}

#[cfg(unix)]
#[test]
fn state_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let home = parent.path().join("home");
    let mut state = State::open(&home).unwrap();
    state.begin_run("/p", "src").unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&home), 0o700);
    for name in ["state.db", "state.db-wal", "state.db-shm"] {
        assert_eq!(mode(&home.join(name)), 0o600, "{name}");
    }
}

// Unix links and modes.
#[cfg(unix)]
#[test]
fn a_symlink_planted_at_the_database_or_the_log_is_not_followed() {
    let parent = tempfile::tempdir().unwrap();
    let home = parent.path().join("home");
    let victim = parent.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::fs::create_dir(&home).unwrap();
    std::os::unix::fs::symlink(&victim, home.join("state.db")).unwrap();
    let err = State::open(&home).err().expect("opened through a link");
    assert!(
        matches!(&err, StateError::Private(PrivateFileError::Symlink { path }) if *path == home.join("state.db")),
        "{err:?}"
    );
    assert!(err.to_string().contains("is a symbolic link"), "{err}");

    std::fs::create_dir(home.join("logs")).unwrap();
    std::os::unix::fs::symlink(&victim, home.join("logs/p.log")).unwrap();
    let err = open_log(&home, "/p").expect_err("opened through a link");
    assert!(matches!(err, PrivateFileError::Symlink { .. }), "{err:?}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

// Unix links and modes.
#[cfg(unix)]
#[test]
fn logs_are_private_like_the_database() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let home = parent.path().join("home");
    let (path, _) = open_log(&home, "/work/p").unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(path, home.join("logs/work_p.log"));
    assert_eq!(mode(&home), 0o700);
    assert_eq!(mode(&home.join("logs")), 0o700);
    assert_eq!(mode(&path), 0o600);
}

// Unix owners.
#[cfg(unix)]
#[test]
fn a_home_that_belongs_to_another_user_is_refused() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: cannot give a folder to another user here");
        return;
    }
    let parent = tempfile::tempdir().unwrap();
    let home = parent.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(65534), Some(65534)).unwrap();
    let err = State::open(&home)
        .err()
        .expect("used another user's folder");
    assert!(
        matches!(
            err,
            StateError::Private(PrivateFileError::NotYours { owner: 65534, .. })
        ),
        "{err:?}"
    );
    assert!(!home.join("state.db").exists());
}

#[test]
fn a_runs_source_is_recorded_replaced_and_read_back() {
    let home = tempfile::tempdir().unwrap();
    let mut state = State::open(home.path()).unwrap();
    let run = state.begin_run("/p", "/p/kftray.toml").unwrap();
    assert_eq!(state.source(run).unwrap(), SourceRow::default());
    let mut source = SourceRow {
        git_repo: Some("https://git.example/team.git".into()),
        git_commit: Some("1a2b3c4".into()),
        reload_error: Some("kftray::syntax ...".into()),
        reload_error_at_ms: Some(42),
        ..SourceRow::default()
    };
    state.put_source(run, &source).unwrap();
    assert_eq!(
        State::open(home.path()).unwrap().source(run).unwrap(),
        source
    );
    source.reload_error = None;
    state.put_source(run, &source).unwrap();
    assert_eq!(state.source(run).unwrap(), source);
}

#[test]
fn a_database_of_schema_1_is_migrated_and_keeps_its_runs() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().join("state.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(migrations::MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO runs (project, pid, source, started_at) VALUES ('/p', 1, 'x', 0)",
            [],
        )
        .unwrap();
    }
    let state = State::open(home.path()).unwrap();
    let version: i64 = state
        .conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, migrations::MIGRATIONS.len() as i64);
    let runs: i64 = state
        .conn
        .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(runs, 1);
    assert_eq!(state.source(1).unwrap(), SourceRow::default());
}

#[test]
fn a_damaged_database_and_a_file_for_a_folder_say_what_to_do() {
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("state.db");
    std::fs::write(&db, vec![b'x'; 8192]).unwrap();
    let err = State::open(home.path()).err().expect("garbage opened");
    let text = err.to_string();
    assert!(matches!(err, StateError::Damaged { .. }), "{text}");
    assert!(
        text.contains(&format!("mv {} {}.damaged", db.display(), db.display())),
        "{text}"
    );
    assert!(text.contains("file is not a database"), "{text}");

    let file = home.path().join("not-a-folder");
    std::fs::write(&file, "").unwrap();
    for home in [file.clone(), file.join("below")] {
        let err = State::open(&home).err().expect("a file opened as a folder");
        assert!(
            matches!(&err, StateError::NotAFolder { path } if *path == file),
            "{err}"
        );
        assert!(
            err.to_string().contains("point KFTRAY_HOME at a folder"),
            "{err}"
        );
    }
}
