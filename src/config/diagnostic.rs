//! Findings about a configuration: every problem, each pinned to a file, a line, a column and
//! the exact span, with a label and a help line. Rendered as miette reports for people and as
//! JSON for CI bots and editors.

use super::source::SourceMap;
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

/// One problem, located in the layered sources (spans are global offsets).
#[derive(Debug, Clone)]
pub(crate) struct Issue {
    pub code: &'static str,
    pub message: String,
    pub labels: Vec<(Range<usize>, String)>,
    pub help: Option<String>,
}

impl Issue {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Issue {
            code,
            message: message.into(),
            labels: Vec::new(),
            help: None,
        }
    }

    pub(crate) fn label(mut self, span: Range<usize>, text: impl Into<String>) -> Self {
        self.labels.push((span, text.into()));
        self
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// A place in a file that a finding points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Label {
    /// The file as it was named when loading (relative paths stay relative).
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Byte offsets of the span in that file.
    pub start: usize,
    /// One past the span's last byte.
    pub end: usize,
    /// What the label says under the span.
    pub text: String,
}

/// One problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Finding {
    /// Stable identifier of the kind of problem, e.g. `kftray::unknown-key`.
    pub code: String,
    /// What is wrong, in one sentence.
    pub message: String,
    /// The file the finding is about (the first label's file, or the file that could not be
    /// read).
    pub file: PathBuf,
    /// Position of the first label (1-based), when there is one.
    pub line: Option<usize>,
    /// Column of the first label (1-based, in characters), when there is one.
    pub column: Option<usize>,
    /// Every place involved: a duplicate local port labels both forwards.
    pub labels: Vec<Label>,
    /// What to write instead, or where to look.
    pub help: Option<String>,
}

/// Every finding of one load, with the sources needed to render them.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    findings: Vec<Finding>,
    sources: Arc<Vec<(PathBuf, String)>>,
}

impl Diagnostics {
    pub(crate) fn from_issues(issues: Vec<Issue>, map: &SourceMap) -> Self {
        let findings = issues
            .into_iter()
            .map(|issue| {
                let labels: Vec<Label> = issue
                    .labels
                    .iter()
                    .map(|(span, text)| {
                        let pos = map.position(span);
                        let file = map
                            .file(pos.file)
                            .map(|f| f.path.clone())
                            .unwrap_or_default();
                        Label {
                            file,
                            line: pos.line,
                            column: pos.column,
                            start: pos.local.start,
                            end: pos.local.end,
                            text: text.clone(),
                        }
                    })
                    .collect();
                let file = labels
                    .first()
                    .map(|l| l.file.clone())
                    .or_else(|| map.files().first().map(|f| f.path.clone()))
                    .unwrap_or_default();
                Finding {
                    code: issue.code.to_owned(),
                    message: issue.message,
                    file,
                    line: labels.first().map(|l| l.line),
                    column: labels.first().map(|l| l.column),
                    labels,
                    help: issue.help,
                }
            })
            .collect();
        let sources = map
            .files()
            .iter()
            .map(|f| (f.path.clone(), f.text.clone()))
            .collect();
        Diagnostics {
            findings,
            sources: Arc::new(sources),
        }
    }

    /// A finding about a whole file, such as one that cannot be read.
    pub(crate) fn file_problem(
        code: &'static str,
        file: PathBuf,
        message: String,
        help: Option<String>,
    ) -> Self {
        Diagnostics {
            findings: vec![Finding {
                code: code.to_owned(),
                message,
                file,
                line: None,
                column: None,
                labels: Vec::new(),
                help,
            }],
            sources: Arc::default(),
        }
    }

    /// Findings read back (e.g. from the state database): rendered without source lines.
    pub fn from_findings(findings: Vec<Finding>) -> Self {
        Diagnostics {
            findings,
            sources: Arc::default(),
        }
    }

    /// The same report restricted to `keep` (findings of this report).
    pub fn only(&self, keep: &[Finding]) -> Diagnostics {
        Diagnostics {
            findings: keep.to_vec(),
            sources: self.sources.clone(),
        }
    }

    /// Every problem, in the order of the files and their lines.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.findings.is_empty()
    }

    /// How many problems were found.
    pub fn len(&self) -> usize {
        self.findings.len()
    }

    /// The findings as a JSON array (a stable shape: one object per finding, no envelope).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.findings).unwrap_or_else(|_| "[]".to_owned())
    }

    /// The findings as miette reports, each with the source lines around its spans.
    pub fn render(&self, color: bool, width: usize) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(width)
            .with_links(false);
        let mut out = String::new();
        for finding in &self.findings {
            let report = Report::new(finding, &self.sources);
            if handler.render_report(&mut out, &report).is_err() {
                out.push_str(&format!("error: {}\n", finding.message));
            }
            out.push('\n');
        }
        out
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false, 100))
    }
}

impl std::error::Error for Diagnostics {}

/// A finding as miette wants it: labels in the finding's file under it, labels in another
/// file (the other half of a duplicate across kftray.toml and kftray.local.toml) as a related
/// report on that file.
#[derive(Debug)]
struct Report {
    code: String,
    message: String,
    help: Option<String>,
    source: Option<NamedSource<String>>,
    labels: Vec<LabeledSpan>,
    related: Vec<Report>,
}

impl Report {
    fn new(finding: &Finding, sources: &[(PathBuf, String)]) -> Self {
        let source_of = |file: &PathBuf| {
            sources
                .iter()
                .find(|(path, _)| path == file)
                .map(|(path, text)| NamedSource::new(path.display().to_string(), text.clone()))
        };
        let spans = |labels: &[&Label]| {
            labels
                .iter()
                .map(|l| {
                    LabeledSpan::new(Some(l.text.clone()), l.start, l.end.saturating_sub(l.start))
                })
                .collect::<Vec<_>>()
        };
        let (here, elsewhere): (Vec<&Label>, Vec<&Label>) =
            finding.labels.iter().partition(|l| l.file == finding.file);
        let related = elsewhere
            .iter()
            .map(|l| Report {
                code: finding.code.clone(),
                message: format!("{} (see {})", finding.message, l.file.display()),
                help: None,
                source: source_of(&l.file),
                labels: spans(&[l]),
                related: Vec::new(),
            })
            .collect();
        let message = if finding.labels.is_empty() {
            format!("{}: {}", finding.file.display(), finding.message)
        } else {
            finding.message.clone()
        };
        Report {
            code: finding.code.clone(),
            message,
            help: finding.help.clone(),
            source: source_of(&finding.file),
            labels: spans(&here),
            related,
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(&self.code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display + 'a>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(
                self.related.iter().map(|r| r as &dyn miette::Diagnostic),
            ))
        }
    }
}
