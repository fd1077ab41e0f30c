//! The log's writer: a thread of its own behind a bounded queue, so the data path never
//! waits on the disk. When the queue is full, entries are dropped (never traffic) and the
//! file says how many.

use super::format;
use super::parse::Head;
use super::record::Record;
use crate::config::HttpLog;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::SystemTime;

/// How many entries may wait for the disk.
const QUEUE: usize = 4096;
/// How often a busy log is written: entries reach the file this late at most.
const BATCH: std::time::Duration = std::time::Duration::from_millis(20);

/// Where a forward's connections hand their entries.
pub struct Sink {
    queue: SyncSender<Record>,
    dropped: Arc<AtomicU64>,
    /// Sent and not yet written.
    queued: Arc<AtomicU64>,
    settings: HttpLog,
}

/// A log's writer thread, and how many entries it still has to write.
#[derive(Debug)]
pub(super) struct Writing {
    thread: std::thread::JoinHandle<()>,
    queued: Arc<AtomicU64>,
}

impl Writing {
    /// Whether the writer is gone: its forwards and their connections are.
    pub(super) fn is_done(&self) -> bool {
        self.thread.is_finished()
    }

    /// Whether everything sent so far is written (or the writer is gone).
    pub(super) fn is_idle(&self) -> bool {
        self.thread.is_finished() || self.queued.load(Ordering::Acquire) == 0
    }
}

impl Sink {
    /// Starts the writer of `path`; it ends once every clone of the sink is gone and what
    /// they sent is written.
    pub(super) fn start(path: PathBuf, settings: HttpLog) -> io::Result<(Sink, Writing)> {
        let (sink, writer, entries) = Sink::new(path, settings);
        writer.clean_up();
        let queued = sink.queued.clone();
        let thread = std::thread::Builder::new()
            .name("http-log".into())
            .spawn(move || writer.run(entries))?;
        Ok((sink, Writing { thread, queued }))
    }

    fn new(path: PathBuf, settings: HttpLog) -> (Sink, Writer, Receiver<Record>) {
        let (queue, entries) = sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let queued = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            path,
            file: None,
            size: 0,
            settings: settings.clone(),
            dropped: dropped.clone(),
            queued: queued.clone(),
        };
        let sink = Sink {
            queue,
            dropped,
            queued,
            settings,
        };
        (sink, writer, entries)
    }

    pub(super) fn settings(&self) -> &HttpLog {
        &self.settings
    }

    pub(super) fn send(&self, record: Record) {
        // Counted before it can be written, so that the count never goes below zero.
        self.queued.fetch_add(1, Ordering::AcqRel);
        match self.queue.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(1, Ordering::AcqRel);
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(super) fn body_limit(&self) -> u64 {
        self.settings.body_limit
    }

    /// The head with the values of redacted headers replaced, before it is kept anywhere.
    pub(super) fn redacted(&self, mut head: Head) -> Head {
        for (name, value) in &mut head.headers {
            if self
                .settings
                .redact
                .iter()
                .any(|r| r.eq_ignore_ascii_case(name))
            {
                *value = "[redacted]".into();
            }
        }
        head
    }
}

struct Writer {
    path: PathBuf,
    file: Option<BufWriter<File>>,
    size: u64,
    settings: HttpLog,
    dropped: Arc<AtomicU64>,
    queued: Arc<AtomicU64>,
}

impl Writer {
    fn run(mut self, entries: Receiver<Record>) {
        let mut failing = false;
        // Blocks while the forward is idle; under traffic, wakes once per `BATCH` for all
        // that came meanwhile, instead of once per entry on cores the traffic needs.
        while let Ok(first) = entries.recv() {
            let mut batch = vec![first];
            loop {
                batch.extend(entries.try_iter());
                let count = batch.len() as u64;
                let texts = self.texts_of(batch.drain(..));
                let written = texts
                    .iter()
                    .try_for_each(|text| self.write(text))
                    .and_then(|()| self.flush());
                self.queued.fetch_sub(count, Ordering::AcqRel);
                match written {
                    Ok(()) => failing = false,
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(path = %self.path.display(), error = %e, "cannot write the HTTP log");
                    }
                    Err(_) => {}
                }
                std::thread::sleep(BATCH);
                match entries.try_recv() {
                    Ok(next) => batch.push(next),
                    // Quiet again (or the forward is gone and all is written).
                    Err(_) => break,
                }
            }
        }
    }

    fn texts_of(&self, records: impl Iterator<Item = Record>) -> Vec<String> {
        let mut texts = Vec::new();
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let note =
                format!("{dropped} entries dropped: the log could not keep up with the traffic");
            texts.push(format::note(SystemTime::now(), &note));
        }
        texts.extend(records.map(|record| match record {
            Record::Exchange(exchange) => format::entry(&exchange, self.settings.body_limit),
            Record::Note(note) => format::note(SystemTime::now(), &note),
        }));
        texts
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }

    fn write(&mut self, text: &str) -> io::Result<()> {
        if self.file.is_none() {
            let file = open(&self.path)?;
            self.size = file.metadata()?.len();
            self.file = Some(BufWriter::new(file));
        }
        // Rotated before, not after, an entry that would overfill it: the file being
        // written always holds the newest entry.
        let size = text.len() as u64;
        if self.size > 0 && self.size + size > self.settings.max_file_size {
            self.rotate()?;
            self.file = Some(BufWriter::new(open(&self.path)?));
            self.size = 0;
        }
        if let Some(file) = &mut self.file {
            file.write_all(text.as_bytes())?;
            self.size += size;
        }
        Ok(())
    }

    /// The full file gets the time in its name and a fresh one starts.
    fn rotate(&mut self) -> io::Result<()> {
        self.flush()?;
        self.file = None;
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%S%.3fZ")
            .to_string();
        let mut target = rotated(&self.path, &stamp);
        // Two rotations in one millisecond must not overwrite each other.
        for n in 1.. {
            if !target.exists() {
                break;
            }
            target = rotated(&self.path, &format!("{stamp}-{n}"));
        }
        fs::rename(&self.path, target)?;
        self.clean_up();
        Ok(())
    }

    /// Deletes the rotated files older than the retention.
    fn clean_up(&self) {
        let Some(retention) = self.settings.retention else {
            return;
        };
        let (Some(dir), Some(prefix)) = (self.path.parent(), stem(&self.path)) else {
            return;
        };
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_rotated = name.len() > prefix.len() + ".http".len()
                && name.starts_with(&format!("{prefix}."))
                && name.ends_with(".http");
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|m| now.duration_since(m).is_ok_and(|age| age > retention));
            if is_rotated && old {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

fn stem(path: &Path) -> Option<String> {
    Some(path.file_stem()?.to_string_lossy().into_owned())
}

/// `<alias>.http` rotated at `stamp`: `<alias>.<stamp>.http`, which sorts by time.
fn rotated(path: &Path, stamp: &str) -> PathBuf {
    let stem = stem(path).unwrap_or_default();
    path.with_file_name(format!("{stem}.{stamp}.http"))
}

/// Bodies and headers are the user's traffic: the directory and the file are theirs alone.
fn open(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if let Some(dir) = path.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn wait_for(done: impl Fn() -> bool) {
        for _ in 0..500 {
            if done() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the writer did not get there");
    }

    #[test]
    fn a_full_file_is_rotated_and_old_rotations_are_cleaned_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/web.http");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        // A rotation from long ago, and a file that only looks like one.
        let ancient = path.with_file_name("web.20200101T000000.000Z.http");
        let other = path.with_file_name("webhooks.http");
        for file in [&ancient, &other] {
            fs::write(file, "old").unwrap();
            let long_ago = SystemTime::now() - Duration::from_secs(30 * 86_400);
            File::options()
                .write(true)
                .open(file)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        let settings = HttpLog {
            max_file_size: 200,
            retention: Some(Duration::from_secs(86_400)),
            ..HttpLog::default()
        };
        let (sink, _) = Sink::start(path.clone(), settings).unwrap();
        assert!(!ancient.exists(), "cleaned up when the log opens");
        assert!(other.exists(), "another alias's file is not ours");
        for i in 0..6 {
            sink.send(Record::Note(format!("note number {i} of a few")));
        }
        drop(sink);
        wait_for(|| {
            let rotated = fs::read_dir(path.parent().unwrap())
                .unwrap()
                .flatten()
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.starts_with("web.2") && name.ends_with(".http")
                })
                .count();
            rotated >= 2 && fs::read_to_string(&path).is_ok_and(|t| t.contains("number 5"))
        });
        let all: String = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("web."))
            .map(|e| fs::read_to_string(e.path()).unwrap())
            .collect();
        for i in 0..6 {
            assert_eq!(
                all.matches(&format!("### note number {i} ")).count(),
                1,
                "{all}"
            );
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_full_queue_drops_entries_and_says_how_many() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.http");
        // The writer starts late, as a slow disk would keep it: half of these cannot wait.
        let (sink, writer, entries) = Sink::new(path.clone(), HttpLog::default());
        for i in 0..(QUEUE * 2) {
            sink.send(Record::Note(format!("n{i}")));
        }
        drop(sink);
        writer.run(entries);
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(&format!(
                "### {QUEUE} entries dropped: the log could not keep up"
            )),
            "{}",
            &text[..200]
        );
        assert_eq!(text.matches("### n").count(), QUEUE);
        assert!(text.contains(&format!("### n{}\n", QUEUE - 1)));
    }
}
